//! Which frames make a clip: PyTorchVideo's clip samplers (times in seconds)
//! and the frame-index rules of `UniformTemporalSubsample` and the
//! transformers video-classification pipeline.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// PyTorchVideo's `uniform_temporal_subsample` indices: `linspace(0, t-1, n)`
/// truncated toward zero (torch `.long()`), clamped to `[0, t-1]`.
/// `t == 0` gives an empty list.
pub fn uniform_temporal_subsample(t: usize, n: usize) -> Vec<usize> {
    if t == 0 || n == 0 {
        return Vec::new();
    }
    let last = (t - 1) as f32;
    (0..n)
        .map(|i| {
            // torch.linspace in float32: start + i * step, with the
            // symmetric formula torch uses for the second half.
            let v = torch_linspace_f32(0.0, last, n, i);
            (v as i64).clamp(0, t as i64 - 1) as usize
        })
        .collect()
}

/// The value torch.linspace(start, end, steps) (float32) has at position `i`.
fn torch_linspace_f32(start: f32, end: f32, steps: usize, i: usize) -> f32 {
    if steps == 1 {
        return start;
    }
    let step = (end - start) / (steps - 1) as f32;
    let halfway = steps / 2;
    if i < halfway {
        start + step * i as f32
    } else {
        end - step * (steps - i - 1) as f32
    }
}

/// The frame indices the transformers pipeline reads: `np.linspace(0,
/// num_frames * frame_sampling_rate - 1, num_frames)` cast to int64.
pub fn pipeline_indices(num_frames: usize, frame_sampling_rate: usize) -> Vec<usize> {
    let end = (num_frames * frame_sampling_rate) as f64 - 1.0;
    numpy_linspace_i64(0.0, end, num_frames)
}

/// `n` indices spread over a whole video of `t` frames: `np.linspace(0, t-1, n)`
/// as int64 (what a whole-video uniform sampler reads).
pub fn whole_video_indices(t: usize, n: usize) -> Vec<usize> {
    if t == 0 {
        return Vec::new();
    }
    numpy_linspace_i64(0.0, (t - 1) as f64, n)
}

fn numpy_linspace_i64(start: f64, end: f64, n: usize) -> Vec<usize> {
    match n {
        0 => Vec::new(),
        1 => vec![start.max(0.0) as usize],
        _ => {
            let step = (end - start) / (n - 1) as f64;
            (0..n)
                .map(|i| {
                    // numpy: start + i*step, last element forced to `end`.
                    let v = if i == n - 1 { end } else { start + i as f64 * step };
                    v.max(0.0) as usize
                })
                .collect()
        }
    }
}

/// A clip as a time window of a video, in seconds: frames with timestamps in `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipWindow {
    /// Start in seconds.
    pub start_secs: f64,
    /// End in seconds (exclusive).
    pub end_secs: f64,
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
    fn subsample_handles_short_and_empty() {
        assert_eq!(uniform_temporal_subsample(0, 4), Vec::<usize>::new());
        assert_eq!(uniform_temporal_subsample(1, 3), vec![0, 0, 0]);
        assert_eq!(uniform_temporal_subsample(4, 4), vec![0, 1, 2, 3]);
    }

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
