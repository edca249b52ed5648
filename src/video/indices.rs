//! The frame-index rules: which frames of a video a clip reads, as
//! PyTorchVideo's `UniformTemporalSubsample`, a whole-video uniform sampler
//! and the transformers video-classification pipeline compute them. Used by
//! the decoder, the dataset samplers and classification.

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

/// The frames transformers' video processors sample (`default_sample_indices_fn`, what
/// the pipeline reads for a model with a video processor, V-JEPA 2's):
/// `np.arange(n) * t // n` over a whole video of `t` frames.
pub fn video_processor_indices(t: usize, n: usize) -> Vec<usize> {
    if t == 0 {
        return Vec::new();
    }
    (0..n).map(|i| i * t / n).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsample_handles_short_and_empty() {
        assert_eq!(uniform_temporal_subsample(0, 4), Vec::<usize>::new());
        assert_eq!(uniform_temporal_subsample(1, 3), vec![0, 0, 0]);
        assert_eq!(uniform_temporal_subsample(4, 4), vec![0, 1, 2, 3]);
    }
}
