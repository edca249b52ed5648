//! `vidi classify`, `vidi forward` and `vidi export`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::common::{byte_bar, load_model, load_model_with, print_json, progress_bar, ModelArgs};

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
    /// Print JSON: [{"video", "predictions": [{"label", "score"}]} | {"video", "error"}];
    /// with --timeline each video also has "timeline" and "segments"; with --live, one
    /// line per window: {"t_s", "predictions", "lag_s", "dropped"}.
    #[arg(long)]
    pub json: bool,
    /// Classify windows over the whole video: window k covers frames k*S .. k*S + span
    /// (span = num_frames x --frame-sampling-rate), sampled as the pipeline samples a
    /// video's start; consecutive windows with the same top label are merged into segments.
    #[arg(long, conflicts_with = "live")]
    pub timeline: bool,
    /// S, the frames from one window's start to the next (default: the span, no overlap).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    pub window_stride: Option<u64>,
    /// Write the timeline to FILE: .csv (one row per window), .json, .vtt or .srt
    /// (subtitles any player shows over the video). Repeatable. With several videos,
    /// subtitles go to FILE's name with each video's name added (labels.clip1.vtt).
    #[arg(long, value_name = "FILE", requires = "timeline")]
    pub export: Vec<PathBuf>,
    /// Classify a live source as frames arrive: a camera (/dev/video0, or `webcam` for
    /// the first one) or a stream URL (rtsp://, udp://, rtp://, srt://, tcp://, http(s)://
    /// MJPEG or HLS). Stops on Ctrl-C or after --max-seconds, with exit code 0.
    #[arg(long, value_name = "SOURCE")]
    pub live: Option<String>,
    /// With --live: stop after N seconds.
    #[arg(long, value_name = "N", requires = "live")]
    pub max_seconds: Option<f64>,
    /// Read video stream N of each file (its index in the container, as `vidi probe` and
    /// ffprobe number them) instead of the first video stream.
    #[arg(long, value_name = "N")]
    pub stream: Option<usize>,
    /// Video files or http(s) URLs (downloaded to a temporary file, removed afterwards).
    #[arg(required_unless_present = "live")]
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
    /// Where to write `logits` (B, num_labels), for every architecture (transformers'
    /// VideoPrism gives (B, 1, num_labels): the same values).
    #[arg(long)]
    pub out: PathBuf,
    /// Take clips of another frame count or picture size than the config's, as
    /// transformers' `interpolate_pos_encoding` (refused where transformers cannot).
    #[arg(long)]
    pub interpolate_pos_encoding: bool,
}

pub fn export(a: ExportArgs) -> Result<()> {
    if a.model.precision != vidi::backend::Precision::F32 {
        bail!("vidi export writes f32 weights: leave out --precision");
    }
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

/// A byte bar for URL downloads, and the callback that drives it.
fn download_bar() -> (indicatif::ProgressBar, vidi::infer::DownloadProgress) {
    let pb = byte_bar("downloading");
    pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    let bar = pb.clone();
    let each = move |url: &str, done: u64, total: Option<u64>| {
        if bar.is_hidden() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        bar.set_message(format!("downloading {url}"));
        bar.set_length(total.unwrap_or(done));
        bar.set_position(done);
    };
    (pb, vidi::infer::DownloadProgress(std::sync::Arc::new(each)))
}

/// Ctrl-C removes the downloads on disk; in a live run it stops it (exit 0).
fn on_ctrl_c(live_stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>) {
    let _ = ctrlc::set_handler(move || match &live_stop {
        Some(stop) if !stop.swap(true, std::sync::atomic::Ordering::SeqCst) => {}
        _ => {
            vidi::net::remove_temp_files();
            std::process::exit(130);
        }
    });
}

pub fn classify(a: ClassifyArgs) -> Result<()> {
    if a.top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    for e in &a.export {
        if vidi::timeline::ExportFormat::from_path(e).is_none() {
            bail!("--export {}: the name must end in .csv, .json, .vtt or .srt", e.display());
        }
    }
    if let Some(src) = &a.live {
        if !vidi::live::is_live_source(src) {
            return Err(vidi::live::LiveError::Unknown { source_name: src.clone() }.into());
        }
        if !a.videos.is_empty() {
            bail!("--live classifies one source; give the videos in another run");
        }
    }
    if a.live.is_none() && a.window_stride.is_some() && !a.timeline {
        bail!("--window-stride needs --timeline or --live");
    }
    let stop = a.live.as_ref().map(|_| std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)));
    on_ctrl_c(stop.clone());
    let model = load_model(&a.model)?;
    if let (Some(src), Some(stop)) = (&a.live, &stop) {
        return live(&a, &model, src, stop);
    }
    if a.timeline {
        return timeline(&a, &model);
    }
    let (dl_bar, on_download) = download_bar();
    let opts = vidi::infer::ClassifyOptions {
        top_k: a.top_k,
        frame_sampling_rate: a.frame_sampling_rate.max(1),
        sampling: a.sampling,
        clips: a.clips.max(1),
        batch_size: a.batch_size.max(1),
        workers: 2,
        stream: a.stream,
        url_timeout: url_timeout(&a)?,
        on_download: Some(on_download),
        eval_views: Default::default(),
    };
    // Say which stream is read where there is a choice (unreadable files are reported below).
    for v in a.videos.iter().filter(|v| !vidi::net::is_url_path(v)) {
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
    dl_bar.finish_and_clear();
    if json {
        print_json(&results)?;
    }
    let failed = results.iter().filter(|r| matches!(r, vidi::infer::VideoResult::Err { .. })).count();
    if failed > 0 {
        bail!("{failed} of {} videos could not be classified", results.len());
    }
    Ok(())
}

/// How long a URL's server may stay silent: --timeout, else VIDI_TIMEOUT, else 30 s.
fn url_timeout(a: &ClassifyArgs) -> Result<std::time::Duration> {
    Ok(match a.model.timeout.secs {
        Some(t) => t,
        None => vidi::hub::env_timeout()?,
    })
}

/// The file a per-video export of `video` goes to when several videos share `path`.
fn per_video_path(path: &std::path::Path, video: &str, several: bool) -> PathBuf {
    if !several {
        return path.to_path_buf();
    }
    let name = video.rsplit(['/', '\\']).next().unwrap_or(video);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let stem: String = stem.chars().map(|c| if c.is_alphanumeric() || "-_".contains(c) { c } else { '_' }).collect();
    let base = path.file_stem().and_then(|s| s.to_str()).unwrap_or("timeline");
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("vtt");
    path.with_file_name(format!("{base}.{stem}.{ext}"))
}

/// One video's timeline in JSON (or its error).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum TimelineResult {
    Ok {
        video: String,
        #[serde(flatten)]
        timeline: vidi::timeline::Timeline,
    },
    Err {
        video: String,
        error: String,
    },
}

fn timeline(a: &ClassifyArgs, model: &vidi::model::VideoModel) -> Result<()> {
    let (dl_bar, on_download) = download_bar();
    let fetch_opts = vidi::infer::ClassifyOptions {
        url_timeout: url_timeout(a)?,
        on_download: Some(on_download),
        ..Default::default()
    };
    let opts = vidi::timeline::TimelineOptions {
        top_k: a.top_k,
        frame_sampling_rate: a.frame_sampling_rate.max(1),
        stride: a.window_stride.map(|s| s as usize),
        batch_size: a.batch_size.max(1),
        stream: a.stream,
    };
    let mut results = Vec::new();
    for v in &a.videos {
        let shown = v.display().to_string();
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message(format!("{shown}: reading"));
        let run = || -> Result<vidi::timeline::Timeline, String> {
            let temp;
            let path = if vidi::net::is_url(&shown) {
                temp = vidi::infer::fetch_url(&shown, &fetch_opts)?;
                dl_bar.finish_and_clear();
                temp.path().to_path_buf()
            } else {
                v.clone()
            };
            let mut count = 0;
            let t = vidi::timeline::classify_timeline(model, &path, &opts, &mut |w| {
                count += 1;
                pb.set_message(format!("{shown}: {count} windows, {:.1} s", w.end_s));
                pb.tick();
            });
            t.map_err(|e| e.to_string().replace(&path.display().to_string(), &shown))
        };
        let r = run();
        pb.finish_and_clear();
        match r {
            Ok(t) => {
                if !a.json {
                    println!("{shown}  ({} windows of {} frames, {:.2} fps)", t.timeline.len(), t.window_frames, t.fps);
                    for s in &t.segments {
                        println!("  {:>8.2} - {:>8.2} s  {:>6.3}  {}", s.start_s, s.end_s, s.score, s.label);
                    }
                }
                results.push(TimelineResult::Ok { video: shown, timeline: t });
            }
            Err(error) => {
                eprintln!("error: {shown}: {}", vidi::video::without_path(&error, v));
                results.push(TimelineResult::Err { video: shown, error });
            }
        }
    }
    let done: Vec<(&str, &vidi::timeline::Timeline)> = results
        .iter()
        .filter_map(|r| match r {
            TimelineResult::Ok { video, timeline } => Some((video.as_str(), timeline)),
            TimelineResult::Err { .. } => None,
        })
        .collect();
    for path in &a.export {
        let Some(format) = vidi::timeline::ExportFormat::from_path(path) else { continue };
        let write = |p: &std::path::Path, text: String| -> Result<()> {
            vidi::util::write_atomic(p, text.as_bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            eprintln!("wrote {}", p.display());
            Ok(())
        };
        match format {
            vidi::timeline::ExportFormat::Csv => write(path, vidi::timeline::to_csv(&done))?,
            vidi::timeline::ExportFormat::Json => write(path, serde_json::to_string_pretty(&results)? + "\n")?,
            f => {
                for (video, t) in &done {
                    write(&per_video_path(path, video, done.len() > 1), vidi::timeline::to_subtitles(t, f))?;
                }
            }
        }
    }
    if a.json {
        print_json(&results)?;
    }
    let failed = results.len() - done.len();
    if failed > 0 {
        bail!("{failed} of {} videos could not be classified", results.len());
    }
    Ok(())
}

fn live(
    a: &ClassifyArgs,
    model: &vidi::model::VideoModel,
    src: &str,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<()> {
    let opts = vidi::live::LiveOptions {
        top_k: a.top_k,
        frame_sampling_rate: a.frame_sampling_rate.max(1),
        stride: a.window_stride.map(|s| s as usize),
        max_seconds: a.max_seconds,
        timeout: match a.model.timeout.secs {
            Some(t) => t,
            None => std::time::Duration::from_secs(10),
        },
    };
    if !a.json {
        eprintln!("reading {src} (Ctrl-C stops)");
    }
    let json = a.json;
    let mut out = std::io::stdout();
    let summary = vidi::live::classify_live(
        model,
        src,
        &opts,
        stop,
        &mut |w| {
            use std::io::Write;
            if json {
                if let Ok(line) = serde_json::to_string(w) {
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            } else {
                let top: Vec<String> =
                    w.predictions.iter().take(3).map(|p| format!("{} {:.2}", p.label, p.score)).collect();
                eprint!(
                    "\r\x1b[2K{:>7.1} s  {}  (lag {:.2} s, {} dropped)",
                    w.t_s,
                    top.join(" | "),
                    w.lag_s,
                    w.dropped
                );
            }
        },
        None,
    )?;
    if !json {
        eprintln!();
    }
    eprintln!(
        "{}: {} windows in {:.1} s ({} dropped while the model was busy); {}",
        src, summary.windows, summary.seconds, summary.dropped, summary.ended
    );
    Ok(())
}

pub fn forward(a: ForwardArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let tensors = vidi::model::weights::read_safetensors(&a.pixel_values)?;
    let Some(pixels) = tensors.get("pixel_values") else {
        bail!("{}: no tensor named pixel_values", a.pixel_values.display());
    };
    let logits = model.forward_host_with(pixels.clone(), a.interpolate_pos_encoding)?;
    let mut out = std::collections::BTreeMap::new();
    out.insert("logits".to_string(), logits);
    vidi::model::weights::write_safetensors(&a.out, &out)?;
    Ok(())
}
