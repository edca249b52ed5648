//! `vidi classify`, `vidi forward` and `vidi export`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::common::{load_model, load_model_with, print_json, progress_bar, ModelArgs};

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
    /// whole video (better for long clips); multi: --clips clips averaged (best, slower);
    /// eval: the view `vidi eval` scores (its scores for the video; the app's default).
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
    /// Read video stream N of each file (its index in the container, as `vidi probe` and
    /// ffprobe number them) instead of the first video stream.
    #[arg(long, value_name = "N")]
    pub stream: Option<usize>,
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

pub fn export(a: ExportArgs) -> Result<()> {
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

pub fn classify(a: ClassifyArgs) -> Result<()> {
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
        stream: a.stream,
    };
    // Say which stream is read where there is a choice (unreadable files are reported below).
    for v in &a.videos {
        if let Ok((used, all)) = vidi::video::stream_choice(v, a.stream) {
            if let Some(note) = vidi::video::stream_note(used, &all, a.stream.is_some()) {
                eprintln!("warning: {}: {note}", v.display());
            }
        }
    }
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
                vidi::infer::VideoResult::Err { video, error } => {
                    // The error names its file already, unless it is about something else.
                    eprintln!("error: {}: {}", video.display(), vidi::video::without_path(error, video))
                }
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

pub fn forward(a: ForwardArgs) -> Result<()> {
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
