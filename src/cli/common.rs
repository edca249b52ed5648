//! What the command files share: `--model`/`--device`, JSON output, progress
//! bars, and loading a model. Imports nothing from the other cli files.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

/// `--model` and `--device`, shared by the commands that run a model.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// A model folder in the transformers layout, or a Hub model id (downloaded into the hf-hub cache;
    /// `owner/name@revision` for a branch, tag, commit or `refs/pr/N`).
    #[arg(long)]
    pub model: String,
    /// Branch, tag or commit of a Hub model.
    #[arg(long)]
    pub revision: Option<String>,
    /// Where to compute (default: VIDI_DEVICE, else a GPU when there is one).
    #[arg(long, value_enum)]
    pub device: Option<vidi::backend::DeviceChoice>,
    /// Float precision of inference: f16 on a GPU whose adapter has SHADER_F16
    /// (refused elsewhere), else f32.
    #[arg(long, value_enum, default_value_t)]
    pub precision: vidi::backend::Precision,
    #[command(flatten)]
    pub timeout: TimeoutArg,
}

/// `--timeout`, on the commands that may download from the Hub.
#[derive(Args, Debug, Clone, Copy)]
pub struct TimeoutArg {
    /// Seconds the Hub may stay silent before a try is dropped (three tries
    /// in all; default: VIDI_TIMEOUT, else 30).
    #[arg(long = "timeout", value_name = "SECONDS", value_parser = vidi::hub::parse_timeout)]
    pub secs: Option<std::time::Duration>,
}

/// Pretty JSON and a newline on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// A bar that counts items (videos, steps).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    bar(len, "{msg} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}", what)
}

/// A bar that counts bytes (downloads, uploads, extraction).
pub fn byte_bar(what: &str) -> ProgressBar {
    bar(0, "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}", what)
}

fn bar(len: u64, template: &str, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// A byte bar and the Hub progress handler that drives it: the whole
/// operation's bytes, and "committing" once an upload's bytes are all sent.
pub fn hub_bar(what: &str) -> (ProgressBar, vidi::hub::Progress) {
    let pb = byte_bar(what);
    let bar = pb.clone();
    let progress = vidi::hub::progress(move |t| {
        bar.set_length(t.total);
        bar.set_position(t.done);
        if t.committing {
            bar.set_message("committing");
        }
    });
    (pb, progress)
}

/// A model folder for `spec` (a folder, or a Hub id downloaded with a byte bar).
pub fn resolve_model(spec: &str, revision: Option<&str>, timeout: TimeoutArg) -> Result<PathBuf> {
    let (pb, progress) = hub_bar("downloading model");
    let opts = vidi::hub::DownloadOptions { progress: Some(progress), timeout: timeout.secs, ..Default::default() };
    let dir = vidi::hub::resolve_model_opts(spec, revision, &Default::default(), &opts);
    pb.finish_and_clear();
    Ok(dir?)
}

/// What `--device` (else VIDI_DEVICE, else a GPU when there is one) computes on.
pub fn compute(device: Option<vidi::backend::DeviceChoice>) -> Result<vidi::backend::Compute> {
    let compute = vidi::backend::select(vidi::backend::choice_from(device)?)?;
    if let Some(w) = &compute.warning {
        eprintln!("warning: {w}");
    }
    Ok(compute)
}

/// Loads `--model` on `--device`, with a warning when the checkpoint holds weights the model does not use.
pub fn load_model(a: &ModelArgs) -> Result<vidi::model::VideoModel> {
    let (model, report) = load_model_with(a, &Default::default())?;
    if !report.unused.is_empty() {
        let shown: Vec<&str> = report.unused.iter().take(5).map(String::as_str).collect();
        let more = report.unused.len() - shown.len();
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        eprintln!(
            "warning: {} holds {} weights the model does not use: {}{more}",
            report.source.display(),
            report.unused.len(),
            shown.join(", ")
        );
    }
    Ok(model)
}

/// Loads `--model` on `--device` with `opts`, and says what loading did with the weights.
pub fn load_model_with(
    a: &ModelArgs,
    opts: &vidi::model::LoadOptions,
) -> Result<(vidi::model::VideoModel, vidi::model::LoadReport)> {
    let dir = resolve_model(&a.model, a.revision.as_deref(), a.timeout)?;
    let mut compute = compute(a.device)?;
    vidi::backend::set_precision(&mut compute, a.precision)?;
    eprintln!("computing on {}", compute.description);
    Ok(vidi::model::VideoModel::load(&dir, opts, &compute.device)?)
}
