//! The command line: the clap command, its subcommands, and the one dispatch
//! into the command files (one per command group), which share `common`.

mod bench;
mod classify;
mod common;
mod dataset;
mod docs;
mod download;
mod share;
mod train;
mod video;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use bench::BenchCommand;
use dataset::DatasetCommand;
use download::DownloadCommand;

/// Fine-tune and run video classifiers (VideoMAE, TimeSformer, ViViT, V-JEPA 2, VideoPrism) on your own videos.
///
/// With no subcommand vidi opens the desktop app; video files given on the command
/// line are queued on its Classify tab, a folder opens on its Dataset tab.
#[derive(Parser, Debug)]
#[command(
    name = "vidi",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  vidi                      open the app\n  vidi clip.mp4 other.avi   open the app with these videos on the Classify tab\n  vidi demo                 the offline demo, no window\n  vidi classify --model MCG-NJU/videomae-base-finetuned-kinetics clip.mp4"
)]
pub struct Cli {
    /// What to do. Without one, vidi opens the desktop app.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Videos to classify, or a dataset folder, to open in the app (what the desktop entry passes).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show what video files hold: codec, size, fps, duration, exact frame count.
    ///
    /// Example: vidi probe clip.mp4 other.avi --json
    Probe(video::ProbeArgs),
    /// Inspect or split a dataset folder.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Write one augmented clip as an animated GIF (and a frame strip), as the guide's preview.
    ///
    /// Example: vidi preview clip.avi --preset train --seed 3 --out preview.gif --strip strip.png
    Preview(video::PreviewArgs),
    /// Download from the Hugging Face Hub (honours HF_ENDPOINT, HF_HOME, HF_TOKEN).
    #[command(subcommand)]
    Download(DownloadCommand),
    /// Classify videos with a model, as transformers' video-classification pipeline.
    ///
    /// Example: vidi classify --model MCG-NJU/videomae-base-finetuned-kinetics --top-k 3 clip.mp4
    Classify(classify::ClassifyArgs),
    /// Run the network alone on a tensor: pixel_values (B, T, C, H, W) in, logits out (parity probe).
    ///
    /// Example: vidi forward --model ./my-model --pixel-values in.safetensors --out logits.safetensors
    Forward(classify::ForwardArgs),
    /// Write a model in the transformers layout (config.json, preprocessor_config.json,
    /// model.safetensors): converts pickle checkpoints, or starts a new label set.
    ///
    /// Example: vidi export --model MCG-NJU/videomae-base --labels cat,dog --out ./start
    Export(classify::ExportArgs),
    /// Fine-tune a model on a dataset folder with the transformers Trainer's defaults.
    ///
    /// Evaluates on val/ and checkpoints after each epoch; keeps the best model (val
    /// accuracy) in RUN_DIR/best/ in the transformers layout. Ctrl-C stops after the
    /// current step and saves; --resume goes on exactly where the run stopped.
    /// Before the run and each epoch, RUN_DIR's disk must hold the checkpoints still to
    /// come (each epoch's is kept) and a new best/, plus VIDI_MIN_FREE_BYTES (default
    /// 64 MiB) left free.
    ///
    /// Example: vidi train --data UCF101_subset --model MCG-NJU/videomae-base --out run1
    /// Example (CPU, effective batch 8): vidi train --data d --model m --out r --batch-size 2 --grad-accum 4
    /// Example: vidi train --resume run1
    /// Example (one epoch more for a finished 4-epoch run): vidi train --resume run1 --epochs 5
    Train(train::TrainArgs),
    /// Evaluate a model on a split: accuracy, top-5, per-class precision/recall/F1,
    /// the confusion matrix, and the misclassified videos with their top-3.
    ///
    /// Example: vidi eval --model run1/best --data UCF101_subset --split test --clips 5 --crops 3 --out eval1
    Eval(train::EvalArgs),
    /// The offline demo: makes a synthetic motion dataset (real video files), fine-tunes
    /// a tiny VideoMAE from scratch on the CPU, and evaluates it. No network, no data.
    ///
    /// Example: vidi demo --out vidi-demo
    Demo(train::DemoArgs),
    /// Log in to the Hugging Face Hub: checks the token and saves it where the Hugging Face
    /// tools look ($HF_HOME/token). The token is never printed.
    ///
    /// Example: vidi login            (prompts, input hidden)
    /// Example: echo "$TOKEN" | vidi login --token-stdin
    Login(share::LoginArgs),
    /// Remove the saved Hub token.
    ///
    /// Example: vidi logout
    Logout,
    /// Show which Hub account the token in use belongs to.
    ///
    /// Example: vidi whoami
    Whoami,
    /// Share a model: create the Hub repo if missing and upload config.json,
    /// preprocessor_config.json, model.safetensors and a generated model card, as one commit.
    ///
    /// Example: vidi push run1/best --repo alice/videomae-ucf101 --private
    Push(share::PushArgs),
    /// Measure vidi's speed (print a table; compare with benches/python_decode.py).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// Example: vidi completions bash > ~/.local/share/bash-completion/completions/vidi
    Completions(docs::CompletionsArgs),
    /// Write the man pages (vidi.1 and one per subcommand) into a folder.
    ///
    /// Example: vidi man --out /usr/share/man/man1 && man vidi
    #[command(hide = true)]
    Man(docs::ManArgs),
}

/// `vidi --version`'s long form: the libraries that decide what vidi can read and run.
pub fn long_version() -> String {
    let v = |n: u32| format!("{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
    format!(
        "{}\nFFmpeg libavcodec {}, libavformat {}\nBurn 0.22.1, wgpu 30.0.2",
        env!("CARGO_PKG_VERSION"),
        v(ffmpeg_next::codec::version()),
        v(ffmpeg_next::format::version()),
    )
}

/// The clap command with its runtime long version.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().long_version(long_version())
}

/// Runs a subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Probe(a) => video::probe(a),
        Command::Dataset(DatasetCommand::Inspect(a)) => dataset::inspect(a),
        Command::Dataset(DatasetCommand::Split(a)) => dataset::split(a),
        Command::Preview(a) => video::preview(a),
        Command::Download(DownloadCommand::Dataset(a)) => download::download_dataset(a),
        Command::Download(DownloadCommand::Model(a)) => download::download_model(a),
        Command::Classify(a) => classify::classify(a),
        Command::Forward(a) => classify::forward(a),
        Command::Export(a) => classify::export(a),
        Command::Train(a) => train::train(a),
        Command::Eval(a) => train::eval(a),
        Command::Demo(a) => train::demo(a),
        Command::Login(a) => share::login(a),
        Command::Logout => share::logout(),
        Command::Whoami => share::whoami(),
        Command::Push(a) => share::push(a),
        Command::Completions(a) => docs::completions(a, self::command()),
        Command::Man(a) => docs::man(a, self::command()),
        Command::Bench(BenchCommand::Train(a)) => bench::bench_train(a),
        Command::Bench(BenchCommand::Decode(a)) => bench::bench_decode(a),
        Command::Bench(BenchCommand::Model(a)) => bench::bench_model(a),
        Command::Bench(BenchCommand::Adapter(a)) => bench::bench_adapter(a),
    }
}

#[cfg(test)]
mod tests {
    /// Every command a user can run teaches by example in its --help.
    #[test]
    fn every_subcommand_has_an_example() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let p = format!("{path} {}", sub.get_name());
                if sub.has_subcommands() {
                    walk(sub, &p, missing);
                } else {
                    let help = sub.get_long_about().or(sub.get_about()).map(|s| s.to_string()).unwrap_or_default();
                    if !help.contains("Example") {
                        missing.push(p);
                    }
                }
            }
        }
        let mut missing = vec![];
        let cmd = super::command();
        walk(&cmd, "vidi", &mut missing);
        assert!(missing.is_empty(), "no example in --help: {missing:?}");
        assert!(cmd.get_after_help().is_some_and(|h| h.to_string().contains("vidi clip.mp4")));
    }
}
