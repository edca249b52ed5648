//! Clips of another frame count or picture size than the config's, where
//! transformers 5.24 runs them (its `interpolate_pos_encoding`, or the size
//! handling its embeddings do on their own), and a one-line refusal where it
//! does not:
//!
//! - V-JEPA 2: positions are rotary, from the token index with the config's grid
//!   (`crop_size / patch_size`): any frame count (a multiple of `tubelet_size`) and size.
//! - VideoMAE: the fixed sinusoid table is computed for the clip's tokens, as a
//!   config of the clip's size would build it.
//! - TimeSformer: the position embeddings are interpolated (nearest) to the clip's
//!   patch grid ([`nearest_grid`]); its layers fold the tokens by `num_frames`, so
//!   the frame count cannot change.
//! - ViViT: refused; transformers' `interpolate_pos_encoding` reshapes the whole
//!   time x space table as one square grid and fails on every other size.
//! - VideoPrism: its learned spatial table is resized to the clip's patch grid
//!   (bilinear, antialiased: [`bilinear_grid`]) and its temporal table to the
//!   clip's frame count (the same along time), as its `interpolate_pos_encoding`
//!   does; any frame count and any sides that are whole patches, square or not.

use super::config::{Architecture, ModelConfig};
use super::ModelError;
use crate::dataset::transforms::linear_resample_matrix;

/// Whether a model of `config` can take a clip of `shape` (batch, frames, channels,
/// height, width) through [`super::VideoModel::forward_interpolated`]; why not in one line.
pub fn check(config: &ModelConfig, shape: &[usize]) -> Result<(), ModelError> {
    let c = config;
    let refuse = |why: String| Err(ModelError::OtherSize(why));
    let &[b, f, ch, h, w] = shape else {
        return refuse(format!("a clip is (batch, frames, channels, height, width); got {shape:?}"));
    };
    if b == 0 || ch != c.num_channels {
        return refuse(format!(
            "the model takes (batch, frames, {}, height, width) clips; got {shape:?}",
            c.num_channels
        ));
    }
    let name = c.arch.display_name();
    let (p, t) = (c.patch_size, c.tubelet_size);
    let same = f == c.num_frames && h == c.image_size && w == c.image_size;
    if c.arch == Architecture::Vivit && !same {
        return refuse(format!(
            "{name} takes {} frames of {s}x{s} only: transformers' interpolate_pos_encoding fails for ViViT on \
             any other clip size, so there is nothing to match",
            c.num_frames,
            s = c.image_size
        ));
    }
    if c.arch == Architecture::Timesformer && f != c.num_frames {
        return refuse(format!(
            "{name} takes {} frames (num_frames), got {f}: transformers' TimeSformer layers fold the tokens by \
             num_frames, so only the picture size may change",
            c.num_frames
        ));
    }
    if f < t || !f.is_multiple_of(t) {
        return refuse(format!("{name} takes a multiple of {t} frames (tubelet_size), got {f}"));
    }
    if h < p || w < p || !h.is_multiple_of(p) || !w.is_multiple_of(p) {
        return refuse(format!("{name} takes pictures whose sides are multiples of {p} (patch_size), got {h}x{w}"));
    }
    if c.arch == Architecture::Timesformer {
        let (gh, gw, g) = (h / p, w / p, c.image_size / p);
        if gw < 2 || !(gh * gw).is_multiple_of(g) {
            return refuse(format!(
                "{name} cannot take {h}x{w} pictures: transformers' TimeSformer needs a patch grid at least 2 \
                 patches wide ({gw} here) whose patch count ({}) is a multiple of the config's grid width {g}",
                gh * gw
            ));
        }
    }
    Ok(())
}

/// The source index of each of `out` outputs of PyTorch's `interpolate(mode="nearest")`
/// over `len` inputs: `floor(i * (len / out))` in f32, the exact halving when `out`
/// is twice `len`, at most `len - 1`.
pub fn nearest(len: usize, out: usize) -> Vec<usize> {
    let scale = len as f32 / out as f32;
    (0..out)
        .map(|i| {
            if out == len {
                i
            } else if out == 2 * len {
                i >> 1
            } else {
                ((i as f32 * scale).floor() as usize).min(len.saturating_sub(1))
            }
        })
        .collect()
}

/// The rows of a `side x side` table (row-major) that PyTorch's 2-D nearest interpolation
/// to `rows x cols` reads, in the output's row-major order.
pub fn nearest_grid(side: usize, rows: usize, cols: usize) -> Vec<usize> {
    let (r, c) = (nearest(side, rows), nearest(side, cols));
    r.iter().flat_map(|i| c.iter().map(move |j| i * side + j)).collect()
}

/// The `rows * cols x side * side` matrix (row-major) that resizes a `side x side`
/// table of rows (row-major grid) to `rows x cols` as PyTorch's
/// `interpolate(mode="bilinear", antialias=True, align_corners=False)`: the
/// product of the two axes' weights.
pub fn bilinear_grid(side: usize, rows: usize, cols: usize) -> Vec<f32> {
    let (r, c) = (linear_resample_matrix(side, rows, true), linear_resample_matrix(side, cols, true));
    let n = side * side;
    let mut m = vec![0f32; rows * cols * n];
    for i in 0..rows {
        for j in 0..cols {
            let row = &mut m[(i * cols + j) * n..(i * cols + j + 1) * n];
            for k in 0..side {
                for l in 0..side {
                    row[k * side + l] = r[i * side + k] * c[j * side + l];
                }
            }
        }
    }
    m
}
