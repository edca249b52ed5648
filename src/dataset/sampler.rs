//! Which frames make a clip: PyTorchVideo's clip samplers (times in seconds).
//! The frame-index rules (`UniformTemporalSubsample`, the transformers
//! pipeline's linspace) live in [`crate::video::indices`], re-exported here.

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use crate::video::indices::{pipeline_indices, uniform_temporal_subsample, whole_video_indices};

/// A clip as a time window of a video, in seconds: frames with timestamps in `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipWindow {
    /// Start in seconds.
    pub start_secs: f64,
    /// End in seconds (exclusive).
    pub end_secs: f64,
}

/// A time range of a longer video that is a sample of its own (an
/// annotation row with a start and an end), in seconds: `[start_s, end_s)`.
///
/// The clip samplers treat the segment as a video of `end_s - start_s`
/// seconds that begins at `start_s`: they draw windows over the segment's
/// duration exactly as over a whole video's ([`ClipSampler::clips`]), and
/// [`Segment::place`] moves each window to the video's clock, cut at the
/// segment's end, so decoding sees no frame outside the range.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Start in seconds.
    pub start_s: f64,
    /// End in seconds (exclusive).
    pub end_s: f64,
}

impl Segment {
    /// Its length in seconds (what the clip samplers take as the duration).
    pub fn duration_s(&self) -> f64 {
        self.end_s - self.start_s
    }

    /// A window drawn over the segment (times from its start) on the video's clock, cut at the segment's end.
    pub fn place(&self, w: ClipWindow) -> ClipWindow {
        ClipWindow { start_secs: self.start_s + w.start_secs, end_secs: (self.start_s + w.end_secs).min(self.end_s) }
    }
}

/// How clips are drawn from a video, with PyTorchVideo's semantics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClipSampler {
    /// One clip per video, start uniform in `[0, max(duration - clip, 0)]`
    /// (`make_clip_sampler("random", d)`; the guide's training sampler).
    Random {
        /// Clip length in seconds.
        clip_duration: f64,
    },
    /// Back-to-back clips of `clip_duration` from the start while they fit
    /// (`make_clip_sampler("uniform", d)`; the guide's val/test sampler,
    /// which yields every such clip of each video).
    Uniform {
        /// Clip length in seconds.
        clip_duration: f64,
    },
    /// `clips_per_video` clips spread evenly over the video
    /// (`ConstantClipsPerVideoSampler`; the multi-view test protocol).
    ConstantClipsPerVideo {
        /// Clip length in seconds.
        clip_duration: f64,
        /// How many clips.
        clips_per_video: usize,
    },
}

/// Tolerance PyTorchVideo's UniformClipSampler uses when deciding the last clip.
const EPS: f64 = 1e-6;

impl ClipSampler {
    /// The clips of a video of `duration` seconds. `rng` is used by `Random` only.
    pub fn clips<R: Rng + ?Sized>(&self, duration: f64, rng: &mut R) -> Vec<ClipWindow> {
        match *self {
            ClipSampler::Random { clip_duration } => {
                let max_start = (duration - clip_duration).max(0.0);
                let start = if max_start > 0.0 { rng.random_range(0.0..=max_start) } else { 0.0 };
                vec![ClipWindow { start_secs: start, end_secs: start + clip_duration }]
            }
            ClipSampler::Uniform { clip_duration } => {
                let mut out = Vec::new();
                let mut i = 0usize;
                loop {
                    let start = i as f64 * clip_duration;
                    let end = start + clip_duration;
                    out.push(ClipWindow { start_secs: start, end_secs: end });
                    let next_end = end + clip_duration;
                    if next_end - duration > EPS || clip_duration <= 0.0 {
                        break;
                    }
                    i += 1;
                }
                out
            }
            ClipSampler::ConstantClipsPerVideo { clip_duration, clips_per_video } => {
                let max_start = (duration - clip_duration).max(0.0);
                // PyTorchVideo divides by clips_per_video (not clips - 1): the last clip ends before the video does.
                let gap = max_start / clips_per_video.max(1) as f64;
                (0..clips_per_video)
                    .map(|i| {
                        let start = gap * i as f64;
                        ClipWindow { start_secs: start, end_secs: start + clip_duration }
                    })
                    .collect()
            }
        }
    }

    /// The clip length in seconds.
    pub fn clip_duration(&self) -> f64 {
        match *self {
            ClipSampler::Random { clip_duration }
            | ClipSampler::Uniform { clip_duration }
            | ClipSampler::ConstantClipsPerVideo { clip_duration, .. } => clip_duration,
        }
    }
}

/// The guide's clip length: `num_frames * sample_rate / fps` seconds (16 * 4 / 30).
pub fn guide_clip_duration(num_frames: usize, sample_rate: usize, fps: f64) -> f64 {
    num_frames as f64 * sample_rate as f64 / fps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_clip_stays_inside_the_video() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        use rand::SeedableRng;
        let s = ClipSampler::Random { clip_duration: 2.0 };
        for _ in 0..100 {
            let c = s.clips(5.0, &mut rng)[0];
            assert!(c.start_secs >= 0.0 && c.end_secs <= 5.0 + 1e-9, "{c:?}");
        }
        let c = s.clips(1.0, &mut rng)[0];
        assert_eq!(c.start_secs, 0.0);
    }
}
