//! The guide's transform pipelines, with its defaults, as data.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::sampler::{guide_clip_duration, ClipSampler};
use super::transforms::{short_side_size, Clip, TransformError};
use crate::video::indices::uniform_temporal_subsample;
use crate::video::{FrameBound, RgbFrame};

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

    /// How far frames may be scaled down right after decoding for this
    /// preset (see [`FrameBound`]): to the largest short side it resizes to.
    pub fn frame_bound(&self) -> FrameBound {
        let side = match self {
            Preset::Train(p) => p.max_short_side,
            Preset::Val(p) => p.resize.0.max(p.resize.1),
        };
        FrameBound { short_side: u32::try_from(side).unwrap_or(u32::MAX) }
    }

    /// Transforms the decoded frames of one clip window into the model's
    /// input, (T, C, H, W) normalised. Only the frames [`Preset::frame_selection`] keeps are used.
    ///
    /// The random choices (scale, crop, flip) are drawn once, in the order
    /// the guide's transforms draw them, and every frame is then transformed
    /// on its own: the values are those of transforming the whole clip, and
    /// only one frame at a time is held as floats at its decoded size.
    pub fn apply<R: Rng + ?Sized>(&self, frames: &[RgbFrame], rng: &mut R) -> Result<Clip, TransformError> {
        if frames.is_empty() {
            return Err(TransformError::Empty);
        }
        let picked: Vec<&RgbFrame> = self.frame_selection(frames.len()).into_iter().map(|i| &frames[i]).collect();
        let first = picked.first().ok_or(TransformError::Empty)?;
        if picked.iter().any(|f| (f.width, f.height) != (first.width, first.height)) {
            return Err(TransformError::MixedSizes);
        }
        let (h, w) = (first.height as usize, first.width as usize);
        match self {
            Preset::Train(p) => {
                // RandomShortSideScale, RandomCrop, RandomHorizontalFlip: their draws, in order.
                let (min, max) = (p.min_short_side, p.max_short_side);
                if min == 0 || min > max {
                    return Err(TransformError::BadSize(format!("short side range {min}..={max}")));
                }
                let (nh, nw) = short_side_size(h, w, rng.random_range(min..=max));
                if p.crop > nh || p.crop > nw {
                    return Err(TransformError::CropTooLarge { crop_h: p.crop, crop_w: p.crop, h: nh, w: nw });
                }
                let top = rng.random_range(0..=nh - p.crop);
                let left = rng.random_range(0..=nw - p.crop);
                let flip = rng.random::<f64>() < p.flip_p;
                Clip::from_frames_each(&picked, 1.0, |one| {
                    let one = one.rescale(1.0 / 255.0, 0.0).normalize(&p.mean, &p.std).resize(nh, nw, false)?;
                    let one = one.crop(top, left, p.crop, p.crop)?;
                    Ok(if flip { one.hflip() } else { one })
                })
            }
            Preset::Val(p) => Clip::from_frames_each(&picked, 1.0, |one| {
                one.rescale(1.0 / 255.0, 0.0).normalize(&p.mean, &p.std).resize(p.resize.0, p.resize.1, p.antialias)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn frames(n: usize, w: u32, h: u32) -> Vec<RgbFrame> {
        (0..n)
            .map(|t| {
                let data = (0..w * h * 3).map(|i| ((i * 7 + t as u32 * 31) % 251) as u8).collect();
                RgbFrame { width: w, height: h, data, time_secs: None }
            })
            .collect()
    }

    /// Frame by frame gives the whole-clip chain of the guide's transforms, value for value.
    #[test]
    fn frame_by_frame_equals_the_whole_clip_transforms() {
        let f = frames(5, 61, 47);
        for seed in 0..6 {
            let p =
                TrainPreset { num_frames: 3, min_short_side: 40, max_short_side: 56, crop: 32, ..Default::default() };
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let got = Preset::Train(p.clone()).apply(&f, &mut rng).unwrap();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let picked: Vec<RgbFrame> = uniform_temporal_subsample(5, 3).into_iter().map(|i| f[i].clone()).collect();
            let want = Clip::from_frames(&picked, 1.0)
                .unwrap()
                .rescale(1.0 / 255.0, 0.0)
                .normalize(&p.mean, &p.std)
                .random_short_side_scale(p.min_short_side, p.max_short_side, &mut rng)
                .unwrap()
                .random_crop(p.crop, p.crop, &mut rng)
                .unwrap()
                .random_hflip(p.flip_p, &mut rng);
            assert_eq!(got, want, "seed {seed}");
        }
        let v = ValPreset { num_frames: 4, resize: (24, 30), ..Default::default() };
        let got = Preset::Val(v.clone()).apply(&f, &mut rand::rng()).unwrap();
        let picked: Vec<RgbFrame> = uniform_temporal_subsample(5, 4).into_iter().map(|i| f[i].clone()).collect();
        let want = Clip::from_frames(&picked, 1.0)
            .unwrap()
            .rescale(1.0 / 255.0, 0.0)
            .normalize(&v.mean, &v.std)
            .resize(24, 30, true)
            .unwrap();
        assert_eq!(got, want);
        let too_small = TrainPreset { crop: 64, min_short_side: 40, max_short_side: 56, ..Default::default() };
        let err = Preset::Train(too_small).apply(&f, &mut rand::rng()).unwrap_err();
        assert!(matches!(err, TransformError::CropTooLarge { crop_h: 64, .. }), "{err:?}");
    }
}
