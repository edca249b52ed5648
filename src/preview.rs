//! The guide's augmentation preview: one transformed clip, un-normalised,
//! as an animated GIF (0.25 s per frame) and as a frame-strip PNG.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use serde::Serialize;

use crate::dataset::presets::Preset;
use crate::dataset::transforms::{pil_resize_bilinear, Clip, TransformError};
use crate::dataset::ClipWindow;
use crate::video::{decode_time_range_subsampled, probe_stream, DecodeOptions, RgbFrame, VideoError};

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// Reading the video failed.
    #[error(transparent)]
    Video(#[from] VideoError),
    /// The transform failed (e.g. a crop larger than the picture).
    #[error("{path}: {source}")]
    Transform {
        /// The video.
        path: PathBuf,
        /// What failed.
        #[source]
        source: TransformError,
    },
    /// The clip window held no frames.
    #[error("{path}: no frames between {start:.2}s and {end:.2}s")]
    EmptyWindow {
        /// The video.
        path: PathBuf,
        /// Window start.
        start: f64,
        /// Window end.
        end: f64,
    },
    /// Writing the image failed.
    #[error("{path}: {message}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// One previewed clip: the frames as sampled and as augmented.
#[derive(Clone, Debug, Serialize)]
pub struct PreviewClip {
    /// The clip window on the video's timeline.
    pub window: ClipWindow,
    /// The video's duration (for drawing the window on a timeline).
    pub duration_s: f64,
    /// The sampled frames before transforming.
    #[serde(skip)]
    pub original: Vec<RgbFrame>,
    /// The transformed frames, un-normalised to RGB for display.
    #[serde(skip)]
    pub augmented: Vec<RgbFrame>,
    /// The transformed clip as the model gets it (T, C, H, W), normalised.
    #[serde(skip)]
    pub tensor: Clip,
}

/// Samples one clip of `video` with `preset`'s sampler and transforms it; `seed` fixes every random choice.
pub fn preview_clip(video: &Path, preset: &Preset, seed: u64) -> Result<PreviewClip, PreviewError> {
    preview_clip_of_stream(video, None, preset, seed)
}

/// [`preview_clip`] of video stream `stream` (its index in the container; the first when `None`).
pub fn preview_clip_of_stream(
    video: &Path,
    stream: Option<usize>,
    preset: &Preset,
    seed: u64,
) -> Result<PreviewClip, PreviewError> {
    let info = probe_stream(video, stream)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let duration = info.sampling_duration_s();
    let window = preset.clip_sampler().clips(duration, &mut rng)[0];
    // Very large frames are scaled down as they are decoded (FrameBound): a
    // clip of 8000x8000 frames would not fit in memory.
    let opts = DecodeOptions { bound: Some(preset.frame_bound()), stream, ..Default::default() };
    let frames =
        decode_time_range_subsampled(video, window.start_secs, window.end_secs, preset.num_frames(), &opts)?.frames;
    if frames.is_empty() {
        return Err(PreviewError::EmptyWindow { path: video.into(), start: window.start_secs, end: window.end_secs });
    }
    let tensor =
        preset.apply(&frames, &mut rng).map_err(|source| PreviewError::Transform { path: video.into(), source })?;
    let selection = preset.frame_selection(frames.len());
    let original: Vec<RgbFrame> = if selection.iter().copied().eq(0..frames.len()) {
        frames
    } else {
        selection.into_iter().map(|i| frames[i].clone()).collect()
    };
    let (mean, std) = preset.mean_std();
    let augmented = tensor.clone().denormalize(&mean, &std).to_rgb_frames();
    Ok(PreviewClip { window, duration_s: duration, original, augmented, tensor })
}

/// Writes frames as an animated GIF, `delay_ms` per frame, looping forever.
pub fn write_gif(frames: &[RgbFrame], delay_ms: u32, path: &Path) -> Result<(), PreviewError> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let err = |m: String| PreviewError::Write { path: path.into(), message: m };
    let tmp = path.with_extension("gif.partial");
    let file = std::fs::File::create(&tmp).map_err(|e| err(e.to_string()))?;
    {
        let mut enc = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
        enc.set_repeat(Repeat::Infinite).map_err(|e| err(e.to_string()))?;
        for f in frames {
            let rgba: Vec<u8> = f.data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
            let buf =
                image::RgbaImage::from_raw(f.width, f.height, rgba).ok_or_else(|| err("bad frame size".into()))?;
            let frame = image::Frame::from_parts(buf, 0, 0, image::Delay::from_numer_denom_ms(delay_ms, 1));
            enc.encode_frame(frame).map_err(|e| err(e.to_string()))?;
        }
    }
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

/// Lays rows of frames side by side into one PNG; each row is scaled to `row_height` pixels high.
pub fn write_strip(rows: &[&[RgbFrame]], row_height: u32, path: &Path) -> Result<(), PreviewError> {
    let err = |m: String| PreviewError::Write { path: path.into(), message: m };
    let gap = 4u32;
    let scaled: Vec<Vec<RgbFrame>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|f| {
                    let w = ((f.width as f64 * row_height as f64 / f.height.max(1) as f64).round() as usize).max(1);
                    pil_resize_bilinear(f, w, row_height as usize)
                })
                .collect()
        })
        .collect();
    let width = scaled.iter().map(|r| r.iter().map(|f| f.width + gap).sum::<u32>()).max().unwrap_or(1).max(1);
    let height = (row_height + gap) * scaled.len().max(1) as u32;
    let mut img = image::RgbImage::from_pixel(width, height, image::Rgb([32, 32, 32]));
    for (ri, row) in scaled.iter().enumerate() {
        let mut x0 = 0;
        let y0 = ri as u32 * (row_height + gap);
        for f in row {
            for y in 0..f.height {
                for x in 0..f.width {
                    img.put_pixel(x0 + x, y0 + y, image::Rgb(f.pixel(x, y)));
                }
            }
            x0 += f.width + gap;
        }
    }
    let tmp = path.with_extension("png.partial");
    img.save_with_format(&tmp, image::ImageFormat::Png).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}
