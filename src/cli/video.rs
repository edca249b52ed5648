//! `vidi probe` and `vidi preview`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use vidi::dataset::presets::{Preset, TrainPreset, ValPreset};

use super::common::print_json;

/// `vidi probe`.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Video files.
    #[arg(required = true)]
    pub videos: Vec<PathBuf>,
    /// Print JSON: a list of {path, stream_index, video_streams, width, height, fps, frames,
    /// duration_s, codec, warnings, ...} or {path, error}.
    #[arg(long)]
    pub json: bool,
    /// Read video stream N (its index in the container, as `vidi probe` and ffprobe number
    /// them) instead of the first video stream.
    #[arg(long, value_name = "N")]
    pub stream: Option<usize>,
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
    /// Read video stream N (its index in the container, as `vidi probe` and ffprobe number
    /// them) instead of the first video stream.
    #[arg(long, value_name = "N")]
    pub stream: Option<usize>,
}

pub fn probe(a: ProbeArgs) -> Result<()> {
    let mut rows = Vec::new();
    let mut failed = 0;
    for path in &a.videos {
        match vidi::video::probe_stream(path, a.stream) {
            Ok(info) => {
                if !a.json {
                    println!(
                        "{}: {} stream {}: {} {}x{}{} {:.3} fps ({}/{}), {:.2} s, {} frames{}",
                        path.display(),
                        info.container,
                        info.stream_index,
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

pub fn preview(a: PreviewArgs) -> Result<()> {
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
    let clip = vidi::preview::preview_clip_of_stream(&a.video, a.stream, &preset, a.seed)?;
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
