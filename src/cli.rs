//! The command line: clap subcommands over the library.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use vidi::dataset::index::{index_folder_with_progress, IndexOptions};
use vidi::dataset::presets::{Preset, TrainPreset, ValPreset};
use vidi::dataset::split::{split_folder, SplitOptions};

/// Fine-tune and run video classifiers (VideoMAE, TimeSformer, ViViT) on your own videos.
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
    Probe(ProbeArgs),
    /// Inspect or split a dataset folder.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Write one augmented clip as an animated GIF (and a frame strip), as the guide's preview.
    ///
    /// Example: vidi preview clip.avi --preset train --seed 3 --out preview.gif --strip strip.png
    Preview(PreviewArgs),
    /// Download from the Hugging Face Hub (honours HF_ENDPOINT, HF_HOME, HF_TOKEN).
    #[command(subcommand)]
    Download(DownloadCommand),
    /// Classify videos with a model, as transformers' video-classification pipeline.
    ///
    /// Example: vidi classify --model MCG-NJU/videomae-base-finetuned-kinetics --top-k 3 clip.mp4
    Classify(ClassifyArgs),
    /// Run the network alone on a tensor: pixel_values (B, T, C, H, W) in, logits out (parity probe).
    ///
    /// Example: vidi forward --model ./my-model --pixel-values in.safetensors --out logits.safetensors
    Forward(ForwardArgs),
    /// Write a model in the transformers layout (config.json, preprocessor_config.json,
    /// model.safetensors): converts pickle checkpoints, or starts a new label set.
    ///
    /// Example: vidi export --model MCG-NJU/videomae-base --labels cat,dog --out ./start
    Export(ExportArgs),
    /// Fine-tune a model on a dataset folder with the transformers Trainer's defaults.
    ///
    /// Evaluates on val/ and checkpoints after each epoch; keeps the best model (val
    /// accuracy) in RUN_DIR/best/ in the transformers layout. Ctrl-C stops after the
    /// current step and saves; --resume goes on exactly where the run stopped.
    ///
    /// Example: vidi train --data UCF101_subset --model MCG-NJU/videomae-base --out run1
    /// Example (CPU, effective batch 8): vidi train --data d --model m --out r --batch-size 2 --grad-accum 4
    /// Example: vidi train --resume run1
    Train(crate::cli_train::TrainArgs),
    /// Evaluate a model on a split: accuracy, top-5, per-class precision/recall/F1,
    /// the confusion matrix, and the misclassified videos with their top-3.
    ///
    /// Example: vidi eval --model run1/best --data UCF101_subset --split test --clips 5 --crops 3 --out eval1
    Eval(crate::cli_train::EvalArgs),
    /// The offline demo: makes a synthetic motion dataset (real video files), fine-tunes
    /// a tiny VideoMAE from scratch on the CPU, and evaluates it. No network, no data.
    ///
    /// Example: vidi demo --out vidi-demo
    Demo(crate::cli_train::DemoArgs),
    /// Log in to the Hugging Face Hub: checks the token and saves it where the Hugging Face
    /// tools look ($HF_HOME/token). The token is never printed.
    ///
    /// Example: vidi login            (prompts, input hidden)
    /// Example: echo "$TOKEN" | vidi login --token-stdin
    Login(crate::cli_share::LoginArgs),
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
    Push(crate::cli_share::PushArgs),
    /// Measure vidi's speed (print a table; compare with benches/python_decode.py).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// Example: vidi completions bash > ~/.local/share/bash-completion/completions/vidi
    Completions(CompletionsArgs),
    /// Write the man pages (vidi.1 and one per subcommand) into a folder.
    ///
    /// Example: vidi man --out /usr/share/man/man1 && man vidi
    #[command(hide = true)]
    Man(ManArgs),
}

/// `vidi completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `vidi man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Folder for the pages (created).
    #[arg(long)]
    pub out: PathBuf,
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

fn completions(a: CompletionsArgs) -> Result<()> {
    clap_complete::generate(a.shell, &mut command(), "vidi", &mut std::io::stdout());
    Ok(())
}

fn man(a: ManArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut pages = vec![];
    write_man(command(), "vidi", &a.out, &mut pages)?;
    for p in pages {
        println!("{}", p.display());
    }
    Ok(())
}

/// Writes `name.1` for `cmd` and `name-sub.1` for each visible subcommand, recursively.
fn write_man(cmd: clap::Command, name: &str, out: &std::path::Path, pages: &mut Vec<PathBuf>) -> Result<()> {
    let cmd = cmd.name(name.to_string()).bin_name(name.replace('-', " "));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        write_man(sub.clone(), &format!("{name}-{}", sub.get_name()), out, pages)?;
    }
    let path = out.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    vidi::util::write_atomic(&path, &buf).with_context(|| format!("writing {}", path.display()))?;
    pages.push(path);
    Ok(())
}

/// `vidi export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// New labels, comma-separated: the classifier is replaced by a new one for them.
    #[arg(long, value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
    /// Seed of a new classifier's initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (created; files in it are replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
}

/// `--model` and `--device`, shared by the commands that run a model.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// A model folder in the transformers layout, or a Hub model id (downloaded into the hf-hub cache).
    #[arg(long)]
    pub model: String,
    /// Branch, tag or commit of a Hub model.
    #[arg(long)]
    pub revision: Option<String>,
    /// Where to compute (default: VIDI_DEVICE, else a GPU when there is one).
    #[arg(long, value_enum)]
    pub device: Option<vidi::backend::DeviceChoice>,
}

/// `vidi classify`.
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Labels to show per video (capped at the number of labels).
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Step between the sampled frames (the pipeline's frame_sampling_rate).
    #[arg(long, default_value_t = 1)]
    pub frame_sampling_rate: usize,
    /// pipeline: frames from the start, exactly as transformers; uniform: spread over the
    /// whole video (better for long clips); multi: --clips clips averaged (best, slower).
    #[arg(long, value_enum, default_value_t = vidi::infer::Sampling::Pipeline)]
    pub sampling: vidi::infer::Sampling,
    /// Clips per video for --sampling multi.
    #[arg(long, default_value_t = 3)]
    pub clips: usize,
    /// Clips per model call.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Print JSON: [{"video", "predictions": [{"label", "score"}]} | {"video", "error"}].
    #[arg(long)]
    pub json: bool,
    /// Video files.
    #[arg(required = true)]
    pub videos: Vec<PathBuf>,
}

/// `vidi forward`.
#[derive(Args, Debug)]
pub struct ForwardArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// safetensors file with an f32 tensor `pixel_values` (B, T, C, H, W).
    #[arg(long)]
    pub pixel_values: PathBuf,
    /// Where to write `logits` (B, num_labels).
    #[arg(long)]
    pub out: PathBuf,
}

/// `vidi probe`.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Video files.
    #[arg(required = true)]
    pub videos: Vec<PathBuf>,
    /// Print JSON: a list of {path, width, height, fps, frames, duration_s, codec, ...} or {path, error}.
    #[arg(long)]
    pub json: bool,
}

/// `vidi dataset ...`.
#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Index a folder (<dir>/{train,val,test}/<Class>/* or <dir>/<Class>/*) and report on it.
    ///
    /// Lists classes (sorted, as the guide's labels), videos per split and class,
    /// unreadable files, classes with no videos, and UCF101 groups found in more
    /// than one split (data leakage).
    ///
    /// Example: vidi dataset inspect UCF101_subset --json
    Inspect(InspectArgs),
    /// Split a flat folder (<src>/<Class>/*) into <out>/{train,val,test}/<Class>/*.
    ///
    /// Group-aware: UCF101 groups (v_<Class>_gNN_cMM) never straddle splits.
    /// Files are hard-linked (copied if linking fails); the source is untouched.
    ///
    /// Example: vidi dataset split my_videos --out my_videos_split --val 0.1 --test 0.2 --seed 0
    Split(SplitArgs),
}

/// `vidi dataset inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The dataset folder.
    pub dir: PathBuf,
    /// Print JSON with classes, counts, unreadable, empty_classes, leaking_groups.
    #[arg(long)]
    pub json: bool,
    /// Do not decode every video to check it (faster; unreadable files go unnoticed).
    #[arg(long)]
    pub no_check: bool,
}

/// `vidi dataset split`.
#[derive(Args, Debug)]
pub struct SplitArgs {
    /// The flat source folder.
    pub src: PathBuf,
    /// Output folder (new or empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Share of each class for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val: f64,
    /// Share of each class for test.
    #[arg(long, default_value_t = 0.2)]
    pub test: f64,
    /// Seed of the shuffle (same seed, same split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Copy files instead of hard-linking them.
    #[arg(long)]
    pub copy: bool,
    /// Ignore UCF101 groups (only for data without shared scenes).
    #[arg(long)]
    pub no_groups: bool,
    /// Print the split report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Which transform preset.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum PresetName {
    /// Random clip, random short-side scale, random crop, random flip.
    Train,
    /// First uniform clip, resize (squash) to the crop size.
    Val,
}

/// `vidi preview`.
#[derive(Args, Debug)]
pub struct PreviewArgs {
    /// The video.
    pub video: PathBuf,
    /// Train (augmenting) or val (deterministic) transform.
    #[arg(long, value_enum, default_value_t = PresetName::Train)]
    pub preset: PresetName,
    /// Seed of every random choice (clip start, scale, crop, flip).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Frames per clip (the model's num_frames).
    #[arg(long, default_value_t = 16)]
    pub frames: usize,
    /// Frame sampling rate: the clip lasts frames * rate / 30 seconds.
    #[arg(long, default_value_t = 4)]
    pub sample_rate: usize,
    /// Crop (train) or resize (val) size in pixels.
    #[arg(long, default_value_t = 224)]
    pub size: usize,
    /// Smallest short side of the train preset's random rescale.
    #[arg(long, default_value_t = 256)]
    pub min_short_side: usize,
    /// Largest short side of the train preset's random rescale.
    #[arg(long, default_value_t = 320)]
    pub max_short_side: usize,
    /// Probability of a horizontal flip (train).
    #[arg(long, default_value_t = 0.5)]
    pub flip_p: f64,
    /// The GIF to write (0.25 s per frame).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write a PNG strip: sampled frames above, augmented frames below.
    #[arg(long)]
    pub strip: Option<PathBuf>,
}

/// `vidi download ...`.
#[derive(Subcommand, Debug)]
pub enum DownloadCommand {
    /// Download a model (config, processor config, weights) into the Hub cache.
    ///
    /// Example: vidi download model MCG-NJU/videomae-base-finetuned-kinetics
    Model(DownloadModelArgs),
    /// Download a dataset archive into the Hub cache and extract it.
    ///
    /// Example: vidi download dataset sayakpaul/ucf101-subset --out data
    Dataset(DownloadDatasetArgs),
}

/// `vidi download model`.
#[derive(Args, Debug)]
pub struct DownloadModelArgs {
    /// Model repo id.
    pub id: String,
    /// Branch, tag or commit.
    #[arg(long)]
    pub revision: Option<String>,
}

/// `vidi download dataset`.
#[derive(Args, Debug)]
pub struct DownloadDatasetArgs {
    /// Dataset repo id.
    #[arg(default_value = vidi::hub::REFERENCE_DATASET)]
    pub id: String,
    /// The archive in the repo (.tar.gz or .tar).
    #[arg(long, default_value = vidi::hub::REFERENCE_DATASET_FILE)]
    pub file: String,
    /// Branch, tag or commit.
    #[arg(long)]
    pub revision: Option<String>,
    /// Where to extract.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Only download into the cache; do not extract.
    #[arg(long)]
    pub no_extract: bool,
}

/// `vidi bench ...`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// File -> (1, 16, 3, 224, 224) normalised tensor, per file: clips/s, and FFmpeg's decode-only rate.
    ///
    /// Example: vidi bench decode tests/fixtures/clips/v_ApplyEyeMakeup_g01_c01.avi --runs 20
    Decode(BenchDecodeArgs),
    /// Forward latency, GFLOP/s and peak memory of the base-size models (random weights).
    ///
    /// Run one architecture per process for a clean peak-memory figure; compare with
    /// benches/python_model.py.
    ///
    /// Example: vidi bench model --arch videomae --runs 3 --device cpu
    Model(BenchModelArgs),
    /// Seconds per training step (forward, backward, AdamW) and clips/s, random weights
    /// and inputs; compare with benches/python_train.py.
    ///
    /// Example: vidi bench train --arch videomae --batch 2 --steps 3 --device cpu
    Train(crate::cli_train::BenchTrainArgs),
}

/// Which architecture.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ArchName {
    /// VideoMAE-base, 16 x 224 x 224.
    Videomae,
    /// TimeSformer-base, 8 x 224 x 224.
    Timesformer,
    /// ViViT-B/16x2, 32 x 224 x 224.
    Vivit,
}

/// `vidi bench model`.
#[derive(Args, Debug)]
pub struct BenchModelArgs {
    /// Architecture.
    #[arg(long, value_enum)]
    pub arch: ArchName,
    /// Clips per forward pass.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Timed runs after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where to compute.
    #[arg(long, value_enum)]
    pub device: Option<vidi::backend::DeviceChoice>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `vidi bench decode`.
#[derive(Args, Debug)]
pub struct BenchDecodeArgs {
    /// Video files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Timed runs per measurement (after one warm-up).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Decoder threads (0: FFmpeg decides).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Print JSON rows.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Runs a subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Probe(a) => probe(a),
        Command::Dataset(DatasetCommand::Inspect(a)) => inspect(a),
        Command::Dataset(DatasetCommand::Split(a)) => split(a),
        Command::Preview(a) => preview(a),
        Command::Download(DownloadCommand::Dataset(a)) => download_dataset(a),
        Command::Download(DownloadCommand::Model(a)) => {
            let dir = resolve_model(&a.id, a.revision.as_deref())?;
            println!("{}", dir.display());
            Ok(())
        }
        Command::Classify(a) => classify(a),
        Command::Forward(a) => forward(a),
        Command::Export(a) => export(a),
        Command::Train(a) => crate::cli_train::train(a),
        Command::Eval(a) => crate::cli_train::eval(a),
        Command::Demo(a) => crate::cli_train::demo(a),
        Command::Login(a) => crate::cli_share::login(a),
        Command::Logout => crate::cli_share::logout(),
        Command::Whoami => crate::cli_share::whoami(),
        Command::Push(a) => crate::cli_share::push(a),
        Command::Completions(a) => completions(a),
        Command::Man(a) => man(a),
        Command::Bench(BenchCommand::Train(a)) => crate::cli_train::bench_train(a),
        Command::Bench(BenchCommand::Decode(a)) => bench_decode(a),
        Command::Bench(BenchCommand::Model(a)) => {
            let arch = match a.arch {
                ArchName::Videomae => vidi::model::Architecture::VideoMae,
                ArchName::Timesformer => vidi::model::Architecture::Timesformer,
                ArchName::Vivit => vidi::model::Architecture::Vivit,
            };
            let compute = vidi::backend::select(vidi::backend::choice_from(a.device)?)?;
            let row = vidi::bench::bench_model(arch, a.batch.max(1), a.runs, &compute)?;
            if a.json {
                return print_json(&row);
            }
            println!(
                "{:<12} {:<22} {:>9} {:>8} {:>9} {:>10}  device",
                "arch", "input", "median_s", "GFLOP", "GFLOP/s", "peak_MiB"
            );
            println!(
                "{:<12} {:<22} {:>9.3} {:>8.1} {:>9.1} {:>10}  {}",
                row.arch,
                format!("{:?}", row.input),
                row.median_s,
                row.gflop,
                row.gflops,
                row.peak_rss_mib.map(|m| format!("{m:.0}")).unwrap_or_default(),
                row.device
            );
            Ok(())
        }
    }
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn probe(a: ProbeArgs) -> Result<()> {
    let mut rows = Vec::new();
    let mut failed = 0;
    for path in &a.videos {
        match vidi::video::probe(path) {
            Ok(info) => {
                if !a.json {
                    println!(
                        "{}: {} {} {}x{}{} {:.3} fps ({}/{}), {:.2} s, {} frames{}",
                        path.display(),
                        info.container,
                        info.codec,
                        info.width,
                        info.height,
                        if info.rotation != 0 { format!(" rotated {}°", info.rotation) } else { String::new() },
                        info.fps,
                        info.fps_rational[0],
                        info.fps_rational[1],
                        info.duration_s,
                        info.frames,
                        if info.variable_frame_rate { ", variable frame rate" } else { "" },
                    );
                    for w in &info.warnings {
                        println!("  warning: {w}");
                    }
                }
                rows.push(serde_json::to_value(&info)?);
            }
            Err(e) => {
                failed += 1;
                if a.videos.len() == 1 && !a.json {
                    // One file: its error is the one line.
                    return Err(e.into());
                }
                if !a.json {
                    eprintln!("error: {e}");
                }
                rows.push(serde_json::json!({"path": path, "error": e.to_string()}));
            }
        }
    }
    if a.json {
        print_json(&rows)?;
    }
    if failed > 0 {
        bail!("{failed} of {} files could not be read", a.videos.len());
    }
    Ok(())
}

fn inspect(a: InspectArgs) -> Result<()> {
    let pb = progress_bar(0, "checking videos");
    let opts = IndexOptions { check_readable: !a.no_check, ..Default::default() };
    let pb2 = pb.clone();
    let index = index_folder_with_progress(&a.dir, &opts, &mut move |done, total| {
        pb2.set_length(total as u64);
        pb2.set_position(done as u64);
    });
    pb.finish_and_clear();
    let index = index?;
    if a.json {
        return print_json(&index);
    }
    println!("{} ({:?} layout): {} classes", index.root.display(), index.layout, index.classes.len());
    let splits: Vec<&String> = index.counts.keys().collect();
    let name_w = index.classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
    print!("{:name_w$}", "class");
    for s in &splits {
        print!(" {s:>6}");
    }
    println!();
    for c in &index.classes {
        print!("{c:name_w$}");
        for s in &splits {
            print!(" {:>6}", index.counts[*s].get(c).copied().unwrap_or(0));
        }
        println!();
    }
    print!("{:name_w$}", "total");
    for s in &splits {
        print!(" {:>6}", index.counts[*s].values().sum::<usize>());
    }
    println!();
    for c in &index.empty_classes {
        println!("warning: class folder '{c}' has no readable videos");
    }
    for u in &index.unreadable {
        println!("unreadable (skipped): {}: {}", u.path.display(), u.reason);
    }
    for g in &index.leaking_groups {
        println!("leakage: group {} is in {}", g.group, g.splits.join(" and "));
    }
    if index.unreadable.is_empty() && index.leaking_groups.is_empty() && index.empty_classes.is_empty() {
        println!("no problems found");
    }
    Ok(())
}

fn split(a: SplitArgs) -> Result<()> {
    let opts = SplitOptions {
        val: a.val,
        test: a.test,
        seed: a.seed,
        copy: a.copy,
        group_aware: !a.no_groups,
        check_readable: true,
    };
    let report = split_folder(&a.src, &a.out, &opts)?;
    if a.json {
        return print_json(&report);
    }
    for (split, per) in &report.counts {
        println!("{split}: {} videos in {} classes", per.values().sum::<usize>(), per.len());
    }
    println!(
        "wrote {} ({} files {}; manifest in split.json)",
        report.out.display(),
        report.assignment.len(),
        if report.copied == report.assignment.len() {
            "copied".to_string()
        } else {
            format!("linked, {} copied", report.copied)
        }
    );
    Ok(())
}

fn preview(a: PreviewArgs) -> Result<()> {
    if a.frames == 0 {
        bail!("--frames must be at least 1");
    }
    let preset = match a.preset {
        PresetName::Train => Preset::Train(TrainPreset {
            num_frames: a.frames,
            sample_rate: a.sample_rate,
            crop: a.size,
            min_short_side: a.min_short_side,
            max_short_side: a.max_short_side,
            flip_p: a.flip_p,
            ..Default::default()
        }),
        PresetName::Val => Preset::Val(ValPreset {
            num_frames: a.frames,
            sample_rate: a.sample_rate,
            resize: (a.size, a.size),
            ..Default::default()
        }),
    };
    let clip = vidi::preview::preview_clip(&a.video, &preset, a.seed)?;
    vidi::preview::write_gif(&clip.augmented, 250, &a.out)?;
    println!(
        "clip {:.2}s..{:.2}s of {:.2}s, {} frames -> {}",
        clip.window.start_secs,
        clip.window.end_secs,
        clip.duration_s,
        clip.augmented.len(),
        a.out.display()
    );
    if let Some(strip) = &a.strip {
        let h = clip.augmented.first().map_or(112, |f| f.height.min(112));
        vidi::preview::write_strip(&[&clip.original, &clip.augmented], h, strip)?;
        println!("strip -> {}", strip.display());
    }
    Ok(())
}

/// Shows hf-hub download progress as a bar.
pub(crate) struct BarProgress(pub(crate) ProgressBar);

impl hf_hub::progress::ProgressHandler for BarProgress {
    fn on_progress(&self, event: &hf_hub::progress::ProgressEvent) {
        use hf_hub::progress::{DownloadEvent, ProgressEvent, UploadEvent};
        match event {
            ProgressEvent::Download(DownloadEvent::Start { total_bytes, .. }) => self.0.set_length(*total_bytes),
            ProgressEvent::Download(DownloadEvent::Progress { files }) => {
                let done: u64 = files.iter().map(|f| f.bytes_completed).sum();
                self.0.set_position(done);
            }
            ProgressEvent::Download(DownloadEvent::AggregateProgress { bytes_completed, .. }) => {
                self.0.set_position(*bytes_completed)
            }
            ProgressEvent::Upload(UploadEvent::Start { total_bytes, .. }) => self.0.set_length(*total_bytes),
            ProgressEvent::Upload(UploadEvent::Progress { bytes_completed, .. }) => {
                self.0.set_position(*bytes_completed)
            }
            ProgressEvent::Upload(UploadEvent::Committing) => self.0.set_message("committing"),
            _ => {}
        }
    }
}

pub(crate) fn byte_bar(what: &str) -> ProgressBar {
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn download_dataset(a: DownloadDatasetArgs) -> Result<()> {
    let pb = byte_bar("downloading");
    let path = vidi::hub::download_dataset_file(
        &a.id,
        &a.file,
        a.revision.as_deref(),
        Some(hf_hub::progress::Progress::new(BarProgress(pb.clone()))),
    )?;
    pb.finish_and_clear();
    println!("cached: {}", path.display());
    if a.no_extract {
        return Ok(());
    }
    let pb = byte_bar("extracting");
    let pb2 = pb.clone();
    let created = vidi::hub::extract_archive(&path, &a.out, &mut |done, total| {
        pb2.set_length(total);
        pb2.set_position(done);
    })
    .with_context(|| format!("extracting {}", path.display()))?;
    pb.finish_and_clear();
    for c in created {
        println!("extracted: {}", c.display());
    }
    Ok(())
}

fn bench_decode(a: BenchDecodeArgs) -> Result<()> {
    let mut rows = Vec::new();
    for f in &a.files {
        rows.extend(vidi::bench::bench_decode(f, a.runs, a.threads)?);
    }
    if a.json {
        return print_json(&serde_json::json!({ "threads": a.threads, "rows": rows }));
    }
    println!("{:<20} {:<40} {:>10} {:>9} {:>10}", "stack", "file", "median_ms", "clips/s", "frames/s");
    for r in &rows {
        let name = r.file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        println!(
            "{:<20} {:<40} {:>10.2} {:>9.2} {:>10}",
            r.stack,
            name,
            r.median_ms,
            r.clips_per_s,
            r.frames_per_s.map(|f| format!("{f:.1}")).unwrap_or_default()
        );
    }
    Ok(())
}

pub(crate) fn resolve_model(spec: &str, revision: Option<&str>) -> Result<PathBuf> {
    let pb = byte_bar("downloading model");
    let dir = vidi::hub::resolve_model(spec, revision, Some(hf_hub::progress::Progress::new(BarProgress(pb.clone()))));
    pb.finish_and_clear();
    Ok(dir?)
}

pub(crate) fn load_model(a: &ModelArgs) -> Result<vidi::model::VideoModel> {
    load_model_with(a, &Default::default()).map(|(m, _)| m)
}

fn load_model_with(
    a: &ModelArgs,
    opts: &vidi::model::LoadOptions,
) -> Result<(vidi::model::VideoModel, vidi::model::LoadReport)> {
    let dir = resolve_model(&a.model, a.revision.as_deref())?;
    let compute = vidi::backend::select(vidi::backend::choice_from(a.device)?)?;
    eprintln!("computing on {}", compute.description);
    Ok(vidi::model::VideoModel::load(&dir, opts, &compute.device)?)
}

fn export(a: ExportArgs) -> Result<()> {
    if let Some(l) = &a.labels {
        if l.is_empty() || l.iter().any(|x| x.trim().is_empty()) {
            bail!("--labels needs non-empty, comma-separated names");
        }
    }
    let opts = vidi::model::LoadOptions { labels: a.labels.clone(), seed: a.seed };
    let (model, report) = load_model_with(&a.model, &opts)?;
    for k in &report.ignored_pretraining {
        eprintln!("ignored (pre-training only): {k}");
    }
    for k in &report.unused {
        eprintln!("unused: {k}");
    }
    for k in &report.newly_initialized {
        eprintln!("newly initialised: {k}");
    }
    model.export(&a.out)?;
    println!("wrote {} ({} labels)", a.out.display(), model.labels.len());
    Ok(())
}

fn classify(a: ClassifyArgs) -> Result<()> {
    if a.top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    let model = load_model(&a.model)?;
    let opts = vidi::infer::ClassifyOptions {
        top_k: a.top_k,
        frame_sampling_rate: a.frame_sampling_rate.max(1),
        sampling: a.sampling,
        clips: a.clips.max(1),
        batch_size: a.batch_size.max(1),
        workers: 2,
    };
    let pb = progress_bar(a.videos.len() as u64, "classifying");
    let json = a.json;
    let results = vidi::infer::classify(&model, &a.videos, &opts, &mut |_, r| {
        pb.inc(1);
        if !json {
            pb.suspend(|| match r {
                vidi::infer::VideoResult::Ok { video, predictions } => {
                    println!("{}", video.display());
                    for p in predictions {
                        println!("  {:>6.3}  {}", p.score, p.label);
                    }
                }
                vidi::infer::VideoResult::Err { video, error } => eprintln!("error: {}: {error}", video.display()),
            });
        }
    });
    pb.finish_and_clear();
    if json {
        print_json(&results)?;
    }
    let failed = results.iter().filter(|r| matches!(r, vidi::infer::VideoResult::Err { .. })).count();
    if failed > 0 {
        bail!("{failed} of {} videos could not be classified", results.len());
    }
    Ok(())
}

fn forward(a: ForwardArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let tensors = vidi::model::weights::read_safetensors(&a.pixel_values)?;
    let Some(pixels) = tensors.get("pixel_values") else {
        bail!("{}: no tensor named pixel_values", a.pixel_values.display());
    };
    let logits = model.forward_host(pixels.clone())?;
    let mut out = std::collections::BTreeMap::new();
    out.insert("logits".to_string(), logits);
    vidi::model::weights::write_safetensors(&a.out, &out)?;
    Ok(())
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
