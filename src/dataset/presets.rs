//! The guide's transform pipelines, with its defaults, as data.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::sampler::{guide_clip_duration, ClipSampler};
use super::transforms::{Clip, TransformError};
use crate::video::indices::uniform_temporal_subsample;
use crate::video::RgbFrame;

/// ImageNet mean (VideoMAE checkpoints).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The guide's training transform: random clip -> `UniformTemporalSubsample`
/// -> `/255` -> `Normalize` -> `RandomShortSideScale(256, 320)` ->
/// `RandomCrop(224)` -> `RandomHorizontalFlip(0.5)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainPreset {
    /// Frames per clip (the model's `num_frames`).
    pub num_frames: usize,
    /// Frame sampling rate used to size the clip window.
    pub sample_rate: usize,
    /// Nominal fps used to size the clip window (the guide: 30).
    pub fps: f64,
    /// Normalisation mean.
    pub mean: [f32; 3],
    /// Normalisation std.
    pub std: [f32; 3],
    /// Smallest short side of the random rescale.
    pub min_short_side: usize,
    /// Largest short side of the random rescale.
    pub max_short_side: usize,
    /// Square crop size.
    pub crop: usize,
    /// Probability of a horizontal flip.
    pub flip_p: f64,
}

impl Default for TrainPreset {
    fn default() -> Self {
        TrainPreset {
            num_frames: 16,
            sample_rate: 4,
            fps: 30.0,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            min_short_side: 256,
            max_short_side: 320,
            crop: 224,
            flip_p: 0.5,
        }
    }
}

/// The guide's val/test transform: uniform clips -> `UniformTemporalSubsample`
/// -> `/255` -> `Normalize` -> `Resize((224, 224))` (a squash, not a crop).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValPreset {
    /// Frames per clip.
    pub num_frames: usize,
    /// Frame sampling rate used to size the clip window.
    pub sample_rate: usize,
    /// Nominal fps used to size the clip window.
    pub fps: f64,
    /// Normalisation mean.
    pub mean: [f32; 3],
    /// Normalisation std.
    pub std: [f32; 3],
    /// Output (height, width).
    pub resize: (usize, usize),
    /// Antialiased resize, torchvision's default for tensors since 0.17 (older
    /// torchvision, current when the guide was written, resized without it).
    pub antialias: bool,
}

impl Default for ValPreset {
    fn default() -> Self {
        ValPreset {
            num_frames: 16,
            sample_rate: 4,
            fps: 30.0,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            resize: (224, 224),
            antialias: true,
        }
    }
}

/// A full preprocessing recipe: which clips, and what to do to their frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "preset", rename_all = "snake_case")]
pub enum Preset {
    /// Training augmentation.
    Train(TrainPreset),
    /// Evaluation transform.
    Val(ValPreset),
}

impl Preset {
    /// The clip sampler the guide pairs with this preset.
    pub fn clip_sampler(&self) -> ClipSampler {
        match self {
            Preset::Train(p) => {
                ClipSampler::Random { clip_duration: guide_clip_duration(p.num_frames, p.sample_rate, p.fps) }
            }
            Preset::Val(p) => {
                ClipSampler::Uniform { clip_duration: guide_clip_duration(p.num_frames, p.sample_rate, p.fps) }
            }
        }
    }

    /// Frames per output clip.
    pub fn num_frames(&self) -> usize {
        match self {
            Preset::Train(p) => p.num_frames,
            Preset::Val(p) => p.num_frames,
        }
    }

    /// Mean and std, to undo normalisation for display.
    pub fn mean_std(&self) -> ([f32; 3], [f32; 3]) {
        match self {
            Preset::Train(p) => (p.mean, p.std),
            Preset::Val(p) => (p.mean, p.std),
        }
    }

    /// Output (height, width) of every clip.
    pub fn output_size(&self) -> (usize, usize) {
        match self {
            Preset::Train(p) => (p.crop, p.crop),
            Preset::Val(p) => p.resize,
        }
    }

    /// Which of `n` decoded clip frames are kept (`UniformTemporalSubsample`).
    pub fn frame_selection(&self, n: usize) -> Vec<usize> {
        uniform_temporal_subsample(n, self.num_frames())
    }

    /// Transforms the decoded frames of one clip window into the model's
    /// input, (T, C, H, W) normalised. Only the frames [`Preset::frame_selection`] keeps are used.
    pub fn apply<R: Rng + ?Sized>(&self, frames: &[RgbFrame], rng: &mut R) -> Result<Clip, TransformError> {
        if frames.is_empty() {
            return Err(TransformError::Empty);
        }
        let picked: Vec<RgbFrame> = self.frame_selection(frames.len()).into_iter().map(|i| frames[i].clone()).collect();
        let clip = Clip::from_frames(&picked, 1.0)?.rescale(1.0 / 255.0, 0.0);
        match self {
            Preset::Train(p) => {
                let clip = clip.normalize(&p.mean, &p.std);
                let clip = clip.random_short_side_scale(p.min_short_side, p.max_short_side, rng)?;
                let clip = clip.random_crop(p.crop, p.crop, rng)?;
                Ok(clip.random_hflip(p.flip_p, rng))
            }
            Preset::Val(p) => clip.normalize(&p.mean, &p.std).resize(p.resize.0, p.resize.1, p.antialias),
        }
    }
}
