//! Clip transforms, pure and seeded, with the semantics of PyTorchVideo /
//! torchvision (float clips) and of the transformers image processors
//! (uint8 frames through PIL-style resampling).
//!
//! A [`Clip`] is float32 in (T, C, H, W) order, C = 3 (RGB). Every random
//! transform takes the RNG it draws from, so a seed fixes the result.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::video::{FrameBound, RgbFrame};

/// A transform could not be applied to this clip.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TransformError {
    /// The clip has no frames.
    #[error("the clip has no frames")]
    Empty,
    /// A crop larger than the picture.
    #[error("crop {crop_h}x{crop_w} is larger than the {h}x{w} picture")]
    CropTooLarge {
        /// Crop height.
        crop_h: usize,
        /// Crop width.
        crop_w: usize,
        /// Picture height.
        h: usize,
        /// Picture width.
        w: usize,
    },
    /// A size of zero, or a min above a max.
    #[error("invalid size: {0}")]
    BadSize(String),
    /// Frames of different sizes in one clip.
    #[error("frames of one clip differ in size")]
    MixedSizes,
}

/// A video clip as float32 (T, C, H, W).
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    /// Frames.
    pub t: usize,
    /// Channels (3).
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// `t * c * h * w` values, frame-major, then channel, row, column.
    pub data: Vec<f32>,
}

impl Clip {
    /// Builds a clip from RGB frames, multiplying each byte by `scale`
    /// (1.0 keeps 0..255 as PyTorchVideo's decoder does; 1/255 gives 0..1).
    pub fn from_frames(frames: &[RgbFrame], scale: f32) -> Result<Clip, TransformError> {
        let first = frames.first().ok_or(TransformError::Empty)?;
        let (h, w) = (first.height as usize, first.width as usize);
        let plane = h * w;
        let mut data = vec![0f32; frames.len() * 3 * plane];
        for (ti, f) in frames.iter().enumerate() {
            if f.width as usize != w || f.height as usize != h {
                return Err(TransformError::MixedSizes);
            }
            fill_planes(f, scale, &mut data[ti * 3 * plane..(ti + 1) * 3 * plane]);
        }
        Ok(Clip { t: frames.len(), c: 3, h, w, data })
    }

    /// Builds a clip one frame at a time: each frame becomes a one-frame clip
    /// (as [`Clip::from_frames`] with `scale`), `each` transforms it, and the
    /// results are stacked. For transforms that treat frames alike (any
    /// random choice drawn once, before), this gives what transforming the
    /// whole clip gives, value for value, while only one frame is ever held
    /// as floats at its decoded size.
    pub fn from_frames_each(
        frames: &[&RgbFrame],
        scale: f32,
        mut each: impl FnMut(Clip) -> Result<Clip, TransformError>,
    ) -> Result<Clip, TransformError> {
        let first = frames.first().ok_or(TransformError::Empty)?;
        let (h, w) = (first.height as usize, first.width as usize);
        if frames.iter().any(|f| f.width as usize != w || f.height as usize != h) {
            return Err(TransformError::MixedSizes);
        }
        let mut out: Option<Clip> = None;
        for f in frames {
            let mut one = Clip { t: 1, c: 3, h, w, data: vec![0f32; 3 * h * w] };
            fill_planes(f, scale, &mut one.data);
            let done = each(one)?;
            match &mut out {
                None => {
                    let mut data = Vec::with_capacity(done.data.len() * frames.len());
                    data.extend_from_slice(&done.data);
                    out = Some(Clip { t: done.t, data, ..done });
                }
                Some(o) => {
                    if (o.c, o.h, o.w) != (done.c, done.h, done.w) {
                        return Err(TransformError::MixedSizes);
                    }
                    o.t += done.t;
                    o.data.extend_from_slice(&done.data);
                }
            }
        }
        out.ok_or(TransformError::Empty)
    }

    /// The (H, W) plane of frame `t`, channel `c`.
    fn plane(&self, t: usize, c: usize) -> &[f32] {
        let p = self.h * self.w;
        let o = (t * self.c + c) * p;
        &self.data[o..o + p]
    }

    /// Applies `f` to every (H, W) plane, producing planes of `nh x nw`.
    fn map_planes(&self, nh: usize, nw: usize, mut f: impl FnMut(&[f32], &mut [f32])) -> Clip {
        let np = nh * nw;
        let mut data = vec![0f32; self.t * self.c * np];
        for t in 0..self.t {
            for c in 0..self.c {
                let o = (t * self.c + c) * np;
                f(self.plane(t, c), &mut data[o..o + np]);
            }
        }
        Clip { t: self.t, c: self.c, h: nh, w: nw, data }
    }

    /// Keeps frames `indices` (in that order).
    pub fn select_frames(&self, indices: &[usize]) -> Clip {
        let fsz = self.c * self.h * self.w;
        let mut data = Vec::with_capacity(indices.len() * fsz);
        for &i in indices {
            data.extend_from_slice(&self.data[i * fsz..(i + 1) * fsz]);
        }
        Clip { t: indices.len(), c: self.c, h: self.h, w: self.w, data }
    }

    /// PyTorchVideo `UniformTemporalSubsample(n)`.
    pub fn uniform_temporal_subsample(&self, n: usize) -> Clip {
        self.select_frames(&crate::video::indices::uniform_temporal_subsample(self.t, n))
    }

    /// Multiplies every value by `factor` and adds `offset` (`x / 255`, or
    /// the ViViT processor's `x / 127.5 - 1`).
    pub fn rescale(mut self, factor: f32, offset: f32) -> Clip {
        for v in &mut self.data {
            *v = *v * factor + offset;
        }
        self
    }

    /// torchvision/PyTorchVideo `Normalize(mean, std)` per channel.
    pub fn normalize(mut self, mean: &[f32; 3], std: &[f32; 3]) -> Clip {
        let p = self.h * self.w;
        for (i, chunk) in self.data.chunks_exact_mut(p).enumerate() {
            let c = i % self.c;
            let (m, s) = (mean[c.min(2)], std[c.min(2)]);
            for v in chunk {
                *v = (*v - m) / s;
            }
        }
        self
    }

    /// The inverse of [`Clip::normalize`], for display.
    pub fn denormalize(mut self, mean: &[f32; 3], std: &[f32; 3]) -> Clip {
        let p = self.h * self.w;
        for (i, chunk) in self.data.chunks_exact_mut(p).enumerate() {
            let c = i % self.c;
            for v in chunk {
                *v = *v * std[c.min(2)] + mean[c.min(2)];
            }
        }
        self
    }

    /// Resizes to `nh x nw` with bilinear interpolation, `align_corners=False`.
    /// With `antialias`, downscaling widens the filter as torchvision's
    /// `Resize(antialias=True)` and PIL do; without, it is
    /// `torch.nn.functional.interpolate(mode="bilinear")`.
    pub fn resize(&self, nh: usize, nw: usize, antialias: bool) -> Result<Clip, TransformError> {
        if nh == 0 || nw == 0 {
            return Err(TransformError::BadSize(format!("resize to {nh}x{nw}")));
        }
        if self.t == 0 {
            return Err(TransformError::Empty);
        }
        let hx = Coeffs::new(self.w, nw, antialias);
        let vy = Coeffs::new(self.h, nh, antialias);
        let (h, w) = (self.h, self.w);
        let mut tmp = vec![0f32; h * nw];
        Ok(self.map_planes(nh, nw, |src, dst| {
            for y in 0..h {
                let row = &src[y * w..(y + 1) * w];
                for x in 0..nw {
                    tmp[y * nw + x] = hx.apply(x, |i| row[i]);
                }
            }
            for y in 0..nh {
                let (lo, ws) = vy.taps(y);
                let out = &mut dst[y * nw..(y + 1) * nw];
                out.fill(0.0);
                for (k, &wt) in ws.iter().enumerate() {
                    let r = &tmp[(lo + k) * nw..(lo + k + 1) * nw];
                    for x in 0..nw {
                        out[x] += wt * r[x];
                    }
                }
            }
        }))
    }

    /// PyTorchVideo `ShortSideScale(size)`: the short side becomes `size`,
    /// the long side `floor(long / short * size)`; bilinear, no antialias.
    pub fn short_side_scale(&self, size: usize) -> Result<Clip, TransformError> {
        let (nh, nw) = short_side_size(self.h, self.w, size);
        self.resize(nh, nw, false)
    }

    /// PyTorchVideo `RandomShortSideScale(min_size, max_size)`: an integer size drawn from `[min, max]`.
    pub fn random_short_side_scale<R: Rng + ?Sized>(
        &self,
        min: usize,
        max: usize,
        rng: &mut R,
    ) -> Result<Clip, TransformError> {
        if min == 0 || min > max {
            return Err(TransformError::BadSize(format!("short side range {min}..={max}")));
        }
        self.short_side_scale(rng.random_range(min..=max))
    }

    /// Crops the box at (`top`, `left`) of `ch x cw`.
    pub fn crop(&self, top: usize, left: usize, ch: usize, cw: usize) -> Result<Clip, TransformError> {
        if top + ch > self.h || left + cw > self.w || ch == 0 || cw == 0 {
            return Err(TransformError::CropTooLarge { crop_h: top + ch, crop_w: left + cw, h: self.h, w: self.w });
        }
        let w = self.w;
        Ok(self.map_planes(ch, cw, |src, dst| {
            for y in 0..ch {
                dst[y * cw..(y + 1) * cw].copy_from_slice(&src[(top + y) * w + left..(top + y) * w + left + cw]);
            }
        }))
    }

    /// torchvision `RandomCrop(size)`: top in `[0, h - size]`, then left in `[0, w - size]`.
    pub fn random_crop<R: Rng + ?Sized>(&self, ch: usize, cw: usize, rng: &mut R) -> Result<Clip, TransformError> {
        if ch > self.h || cw > self.w {
            return Err(TransformError::CropTooLarge { crop_h: ch, crop_w: cw, h: self.h, w: self.w });
        }
        let top = rng.random_range(0..=self.h - ch);
        let left = rng.random_range(0..=self.w - cw);
        self.crop(top, left, ch, cw)
    }

    /// torchvision `CenterCrop(size)`: offsets `round((dim - size) / 2)` with
    /// Python's round-half-to-even.
    pub fn center_crop(&self, ch: usize, cw: usize) -> Result<Clip, TransformError> {
        if ch > self.h || cw > self.w {
            return Err(TransformError::CropTooLarge { crop_h: ch, crop_w: cw, h: self.h, w: self.w });
        }
        let top = ((self.h - ch) as f64 / 2.0).round_ties_even() as usize;
        let left = ((self.w - cw) as f64 / 2.0).round_ties_even() as usize;
        self.crop(top, left, ch, cw)
    }

    /// Mirrors left-right.
    pub fn hflip(&self) -> Clip {
        let w = self.w;
        self.map_planes(self.h, self.w, |src, dst| {
            for (s, d) in src.chunks_exact(w).zip(dst.chunks_exact_mut(w)) {
                for x in 0..w {
                    d[x] = s[w - 1 - x];
                }
            }
        })
    }

    /// torchvision `RandomHorizontalFlip(p)`.
    pub fn random_hflip<R: Rng + ?Sized>(self, p: f64, rng: &mut R) -> Clip {
        if rng.random::<f64>() < p {
            self.hflip()
        } else {
            self
        }
    }

    /// Frames back to RGB bytes (values clamped to 0..=1, times 255, rounded), for display.
    pub fn to_rgb_frames(&self) -> Vec<RgbFrame> {
        let p = self.h * self.w;
        (0..self.t)
            .map(|t| {
                let mut data = vec![0u8; p * 3];
                for c in 0..3.min(self.c) {
                    for (i, v) in self.plane(t, c).iter().enumerate() {
                        data[i * 3 + c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    }
                }
                RgbFrame { width: self.w as u32, height: self.h as u32, data, time_secs: None }
            })
            .collect()
    }
}

/// One RGB frame's three planes, each byte times `scale`, into `out` (`3 * w * h` values).
fn fill_planes(f: &RgbFrame, scale: f32, out: &mut [f32]) {
    let plane = f.width as usize * f.height as usize;
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in f.data.chunks_exact(3).enumerate() {
        r[i] = px[0] as f32 * scale;
        g[i] = px[1] as f32 * scale;
        b[i] = px[2] as f32 * scale;
    }
}

/// PyTorchVideo `ShortSideScale`'s output (height, width) for an `h x w`
/// picture: the short side becomes `size`, the long side `floor(long / short * size)`.
pub fn short_side_size(h: usize, w: usize, size: usize) -> (usize, usize) {
    if w < h {
        (((h as f64 / w as f64) * size as f64).floor() as usize, size)
    } else {
        (size, ((w as f64 / h as f64) * size as f64).floor() as usize)
    }
}

/// The `out x len` matrix (row-major; row `i` holds output `i`'s weights over
/// the inputs) of PyTorch's `interpolate` along one axis with `mode="linear"` or
/// `"bilinear"`, `align_corners=False`, and `antialias` as its flag; for learned
/// position tables (VideoPrism's `interpolate_pos_encoding`).
pub fn linear_resample_matrix(len: usize, out: usize, antialias: bool) -> Vec<f32> {
    let c = Coeffs::new(len, out, antialias);
    let mut m = vec![0f32; out * len];
    for i in 0..out {
        let (lo, taps) = c.taps(i);
        for (k, w) in taps.into_iter().enumerate() {
            m[i * len + lo + k] += w;
        }
    }
    m
}

/// Separable resampling weights for one axis, computed as PIL's
/// `precompute_coeffs` does (triangle filter, centre `(i + 0.5) * scale`,
/// support widened by the scale when downscaling with antialias).
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<f64>,
}

impl Coeffs {
    /// The triangle filter (bilinear), support 1.
    fn new(in_size: usize, out_size: usize, antialias: bool) -> Coeffs {
        Coeffs::with_filter(in_size, out_size, antialias, 1.0, |x| (1.0 - x.abs()).max(0.0))
    }

    /// PIL's `precompute_coeffs` for `filter` of half-width `support`: centre
    /// `(i + 0.5) * scale`, the filter widened by the scale when downscaling
    /// with antialias, each output's weights normalised to sum to one.
    fn with_filter(in_size: usize, out_size: usize, antialias: bool, support: f64, filter: fn(f64) -> f64) -> Coeffs {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = if antialias { scale.max(1.0) } else { 1.0 };
        let support = support * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0f64; out_size * ksize];
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64).max(xmin as i64) as usize;
            let n = (xmax - xmin).min(ksize);
            let k = &mut weights[xx * ksize..xx * ksize + ksize];
            let mut ww = 0.0;
            for x in 0..n {
                let w = filter(((x + xmin) as f64 - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            if ww != 0.0 {
                for v in k.iter_mut().take(n) {
                    *v /= ww;
                }
            }
            bounds.push((xmin, n));
        }
        Coeffs { ksize, bounds, weights }
    }

    fn taps(&self, i: usize) -> (usize, Vec<f32>) {
        let (lo, n) = self.bounds[i];
        (lo, self.weights[i * self.ksize..i * self.ksize + n].iter().map(|w| *w as f32).collect())
    }

    fn apply(&self, i: usize, src: impl Fn(usize) -> f32) -> f32 {
        let (lo, n) = self.bounds[i];
        let w = &self.weights[i * self.ksize..i * self.ksize + n];
        let mut acc = 0f64;
        for (k, wt) in w.iter().enumerate() {
            acc += *wt * src(lo + k) as f64;
        }
        acc as f32
    }

    /// PIL's 8-bit fixed-point form: weights times 2^22, rounded half away from zero.
    fn fixed(&self) -> Vec<i32> {
        self.weights
            .iter()
            .map(|w| if *w < 0.0 { (w * (1 << 22) as f64 - 0.5) as i32 } else { (w * (1 << 22) as f64 + 0.5) as i32 })
            .collect()
    }
}

/// Separable bicubic weights for one axis as PyTorch's antialiased
/// `interpolate(mode="bicubic", antialias=True)` computes them (PIL's
/// scheme: cubic kernel with a = -0.5, support 2, widened by the scale when
/// downscaling).
fn cubic_coeffs(in_size: usize, out_size: usize) -> Coeffs {
    fn cubic(x: f64) -> f64 {
        let (a, x) = (-0.5, x.abs());
        if x < 1.0 {
            ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            (((x - 5.0) * x + 8.0) * x - 4.0) * a
        } else {
            0.0
        }
    }
    Coeffs::with_filter(in_size, out_size, true, 2.0, cubic)
}

/// torchvision `resize(BICUBIC, antialias=True)` of an RGB24 picture to
/// `nw x nh`, as PyTorch's 8-bit antialiased kernel computes it: the
/// horizontal pass then the vertical one, each in fixed point (the weights
/// scaled by the largest power of two that keeps the largest in 15 bits,
/// rounded half away from zero), rounded and clamped to 8 bits after each.
pub fn tv_resize_bicubic(src: &RgbFrame, nw: usize, nh: usize) -> RgbFrame {
    fn fixed(c: &Coeffs) -> (Vec<i64>, u32) {
        let wmax = c.weights.iter().cloned().fold(0.0, f64::max);
        let mut p = 0u32;
        while p < 22 && ((0.5 + wmax * (1u64 << (p + 1)) as f64) as i64) < (1 << 15) {
            p += 1;
        }
        let scale = (1u64 << p) as f64;
        let w = c.weights.iter().map(|w| if *w < 0.0 { (w * scale - 0.5) as i64 } else { (w * scale + 0.5) as i64 });
        (w.collect(), p)
    }
    let pass = |c: &Coeffs, i: usize, px: &dyn Fn(usize) -> i64, (w, p): &(Vec<i64>, u32)| -> u8 {
        let (lo, n) = c.bounds[i];
        let taps = &w[i * c.ksize..i * c.ksize + n];
        let acc = taps.iter().enumerate().fold(1i64 << (p - 1), |a, (k, wt)| a + wt * px(lo + k));
        (acc >> p).clamp(0, 255) as u8
    };
    let (w, h) = (src.width as usize, src.height as usize);
    let (hx, vy) = (cubic_coeffs(w, nw), cubic_coeffs(h, nh));
    let (fx, fy) = (fixed(&hx), fixed(&vy));
    let mut tmp = vec![0u8; h * nw * 3];
    for y in 0..h {
        for x in 0..nw {
            for c in 0..3 {
                tmp[(y * nw + x) * 3 + c] = pass(&hx, x, &|i| src.data[(y * w + i) * 3 + c] as i64, &fx);
            }
        }
    }
    let mut data = vec![0u8; nh * nw * 3];
    for y in 0..nh {
        for x in 0..nw {
            for c in 0..3 {
                data[(y * nw + x) * 3 + c] = pass(&vy, y, &|i| tmp[(i * nw + x) * 3 + c] as i64, &fy);
            }
        }
    }
    RgbFrame { width: nw as u32, height: nh as u32, data, time_secs: src.time_secs }
}

/// PIL `Image.resize(size, BILINEAR)` on an RGB24 picture: horizontal pass,
/// then vertical, each rounded to uint8 in 22-bit fixed point, exactly as
/// Pillow's `ImagingResample` does. This is the resize step of the
/// transformers image processors.
pub fn pil_resize_bilinear(src: &RgbFrame, nw: usize, nh: usize) -> RgbFrame {
    pil_resize_window(src, nw, nh, 0, 0, nh as i64, nw as i64)
}

/// [`pil_resize_bilinear`] to `nw x nh`, keeping only the `ch x cw` window at
/// (`top`, `left`) of the resized picture (pixels outside it are 0, as the
/// transformers centre crop pads). Only the window is computed: resizing then
/// cropping costs what the crop costs.
pub fn pil_resize_window(src: &RgbFrame, nw: usize, nh: usize, top: i64, left: i64, ch: i64, cw: i64) -> RgbFrame {
    let (w, h) = (src.width as usize, src.height as usize);
    let (ch_u, cw_u) = (ch.max(0) as usize, cw.max(0) as usize);
    let mut out = vec![0u8; ch_u * cw_u * 3];
    // Output rows / columns of the resized picture that the window covers.
    let ys: Vec<(usize, usize)> = (0..ch)
        .filter_map(|y| usize::try_from(y + top).ok().filter(|sy| *sy < nh).map(|sy| (y as usize, sy)))
        .collect();
    let xs: Vec<(usize, usize)> = (0..cw)
        .filter_map(|x| usize::try_from(x + left).ok().filter(|sx| *sx < nw).map(|sx| (x as usize, sx)))
        .collect();
    if ys.is_empty() || xs.is_empty() {
        return RgbFrame { width: cw_u as u32, height: ch_u as u32, data: out, time_secs: src.time_secs };
    }
    const HALF: i32 = 1 << 21;
    #[inline]
    fn clip8(v: i32) -> u8 {
        (v >> 22).clamp(0, 255) as u8
    }
    let cx = (nw != w).then(|| Coeffs::new(w, nw, true));
    let cy = (nh != h).then(|| Coeffs::new(h, nh, true));
    let kx = cx.as_ref().map(Coeffs::fixed);
    let ky = cy.as_ref().map(Coeffs::fixed);
    // Source rows the vertical pass reads.
    let (row_lo, row_hi) = match &cy {
        Some(c) => {
            let lo = ys.iter().map(|(_, sy)| c.bounds[*sy].0).min().unwrap_or(0);
            let hi = ys.iter().map(|(_, sy)| c.bounds[*sy].0 + c.bounds[*sy].1).max().unwrap_or(0);
            (lo, hi)
        }
        None => (ys[0].1, ys[ys.len() - 1].1 + 1),
    };
    // Horizontal pass over rows row_lo..row_hi, only the window's columns (uint8, as Pillow).
    let nx = xs.len();
    let mut horiz = vec![0u8; (row_hi - row_lo) * nx * 3];
    for (ri, y) in (row_lo..row_hi).enumerate() {
        let srow = &src.data[y * w * 3..(y + 1) * w * 3];
        let drow = &mut horiz[ri * nx * 3..(ri + 1) * nx * 3];
        for (xi, &(_, sx)) in xs.iter().enumerate() {
            let d = &mut drow[xi * 3..xi * 3 + 3];
            match (&cx, &kx) {
                (Some(c), Some(k)) => {
                    let (lo, n) = c.bounds[sx];
                    let k = &k[sx * c.ksize..sx * c.ksize + n];
                    let (mut r, mut g, mut b) = (HALF, HALF, HALF);
                    for (j, kv) in k.iter().enumerate() {
                        let p = &srow[(lo + j) * 3..(lo + j) * 3 + 3];
                        r += p[0] as i32 * kv;
                        g += p[1] as i32 * kv;
                        b += p[2] as i32 * kv;
                    }
                    d[0] = clip8(r);
                    d[1] = clip8(g);
                    d[2] = clip8(b);
                }
                _ => d.copy_from_slice(&srow[sx * 3..sx * 3 + 3]),
            }
        }
    }
    // Vertical pass into the window.
    for &(oy, sy) in &ys {
        let drow = &mut out[oy * cw_u * 3..(oy + 1) * cw_u * 3];
        match (&cy, &ky) {
            (Some(c), Some(k)) => {
                let (lo, n) = c.bounds[sy];
                let k = &k[sy * c.ksize..sy * c.ksize + n];
                for (xi, &(ox, _)) in xs.iter().enumerate() {
                    let (mut r, mut g, mut b) = (HALF, HALF, HALF);
                    for (j, kv) in k.iter().enumerate() {
                        let o = ((lo + j - row_lo) * nx + xi) * 3;
                        r += horiz[o] as i32 * kv;
                        g += horiz[o + 1] as i32 * kv;
                        b += horiz[o + 2] as i32 * kv;
                    }
                    drow[ox * 3] = clip8(r);
                    drow[ox * 3 + 1] = clip8(g);
                    drow[ox * 3 + 2] = clip8(b);
                }
            }
            _ => {
                let o = (sy - row_lo) * nx * 3;
                for (xi, &(ox, _)) in xs.iter().enumerate() {
                    drow[ox * 3..ox * 3 + 3].copy_from_slice(&horiz[o + xi * 3..o + xi * 3 + 3]);
                }
            }
        }
    }
    RgbFrame { width: cw_u as u32, height: ch_u as u32, data: out, time_secs: src.time_secs }
}

/// The `size` of a transformers image processor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProcessorSize {
    /// Resize so the short side is this many pixels, keeping the aspect ratio.
    ShortestEdge {
        /// Short side in pixels.
        shortest_edge: usize,
    },
    /// Resize to exactly this size.
    HeightWidth {
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
    },
}

/// The steps of a transformers `VideoMAEImageProcessor` / `VivitImageProcessor`
/// (the fields of `preprocessor_config.json` that change the output).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageProcessor {
    /// Resize first.
    pub do_resize: bool,
    /// Target of the resize.
    pub size: ProcessorSize,
    /// Centre-crop after resizing.
    pub do_center_crop: bool,
    /// Crop (height, width).
    pub crop_size: (usize, usize),
    /// Multiply by `rescale_factor`.
    pub do_rescale: bool,
    /// Usually 1/255 (ViViT: 1/127.5).
    pub rescale_factor: f32,
    /// ViViT's `offset`: subtract 1 after rescaling (values in [-1, 1]).
    pub offset: bool,
    /// Normalise with mean/std.
    pub do_normalize: bool,
    /// Per-channel mean.
    pub image_mean: [f32; 3],
    /// Per-channel standard deviation.
    pub image_std: [f32; 3],
    /// The resize filter (`resample`).
    #[serde(default)]
    pub resample: Resample,
}

/// The resize filter of a processor (`resample`, PIL's numbering).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resample {
    /// 2: bilinear, as PIL resizes 8-bit pictures (the image processors).
    #[default]
    Bilinear,
    /// 3: bicubic with antialiasing in float, rounded back to 8 bits, as
    /// torchvision's `resize` does it (transformers 5's video processors).
    Bicubic,
}

impl Default for ImageProcessor {
    /// `MCG-NJU/videomae-base`'s processor.
    fn default() -> Self {
        ImageProcessor {
            do_resize: true,
            size: ProcessorSize::ShortestEdge { shortest_edge: 224 },
            do_center_crop: true,
            crop_size: (224, 224),
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            offset: false,
            do_normalize: true,
            image_mean: [0.485, 0.456, 0.406],
            image_std: [0.229, 0.224, 0.225],
            resample: Resample::Bilinear,
        }
    }
}

impl ImageProcessor {
    /// Runs the processor on RGB frames; the result is (T, 3, H, W).
    pub fn apply(&self, frames: &[RgbFrame]) -> Result<Clip, TransformError> {
        self.apply_threaded(frames, 1)
    }

    /// [`ImageProcessor::apply`] with frames spread over `threads` threads (same result).
    pub fn apply_threaded(&self, frames: &[RgbFrame], threads: usize) -> Result<Clip, TransformError> {
        if frames.is_empty() {
            return Err(TransformError::Empty);
        }
        // Output size of every frame's resize, checked before any work starts.
        let sizes = frames
            .iter()
            .map(|f| {
                let (w, h) = (f.width as usize, f.height as usize);
                if self.do_resize {
                    self.resized_size(w, h)
                } else {
                    Ok((w, h))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let one = |(f, &(nw, nh)): (&RgbFrame, &(usize, usize))| -> RgbFrame {
            if self.resample == Resample::Bicubic {
                let same = nw == f.width as usize && nh == f.height as usize;
                let r = if same { f.clone() } else { tv_resize_bicubic(f, nw, nh) };
                return if self.do_center_crop { hf_center_crop(&r, self.crop_size.0, self.crop_size.1) } else { r };
            }
            if self.do_center_crop {
                // transformers' center_crop: offsets (dim - crop) // 2, zero padding outside.
                let (ch, cw) = (self.crop_size.0 as i64, self.crop_size.1 as i64);
                let top = (nh as i64 - ch).div_euclid(2);
                let left = (nw as i64 - cw).div_euclid(2);
                if nw == f.width as usize && nh == f.height as usize {
                    return hf_center_crop(f, self.crop_size.0, self.crop_size.1);
                }
                pil_resize_window(f, nw, nh, top, left, ch, cw)
            } else {
                pil_resize_bilinear(f, nw, nh)
            }
        };
        let threads = threads.clamp(1, frames.len());
        let processed: Vec<RgbFrame> = if threads == 1 {
            frames.iter().zip(&sizes).map(one).collect()
        } else {
            let chunk = frames.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = frames
                    .chunks(chunk)
                    .zip(sizes.chunks(chunk))
                    .map(|(c, s)| scope.spawn(move || c.iter().zip(s).map(one).collect::<Vec<_>>()))
                    .collect();
                handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
            })
        };
        if processed.len() != frames.len() {
            return Err(TransformError::Empty);
        }
        let mut clip = Clip::from_frames(&processed, 1.0)?;
        if self.do_rescale {
            // transformers rescales in float64 then casts to float32.
            let (scale, off) = (self.rescale_factor as f64, if self.offset { 1.0 } else { 0.0 });
            for v in &mut clip.data {
                *v = (*v as f64 * scale - off) as f32;
            }
        }
        if self.do_normalize {
            clip = clip.normalize(&self.image_mean, &self.image_std);
        }
        Ok(clip)
    }

    /// How far frames may be scaled down right after decoding without
    /// changing what this processor makes of them beyond
    /// [`FrameBound`]'s approximation; `None` when it does not resize (its
    /// centre crop then needs the decoded pixels).
    pub fn frame_bound(&self) -> Option<FrameBound> {
        if !self.do_resize {
            return None;
        }
        let side = match self.size {
            ProcessorSize::ShortestEdge { shortest_edge } => shortest_edge,
            ProcessorSize::HeightWidth { height, width } => height.max(width),
        };
        Some(FrameBound { short_side: u32::try_from(side).unwrap_or(u32::MAX) })
    }

    /// Output size of the resize step, as `get_resize_output_image_size`:
    /// the short side becomes `shortest_edge`, the long side `int(s * long / short)`.
    pub fn resized_size(&self, w: usize, h: usize) -> Result<(usize, usize), TransformError> {
        match self.size {
            ProcessorSize::ShortestEdge { shortest_edge: s } => {
                if s == 0 || w == 0 || h == 0 {
                    return Err(TransformError::BadSize("shortest_edge of 0".into()));
                }
                let (short, long) = if w <= h { (w, h) } else { (h, w) };
                let new_long = (s as f64 * long as f64 / short as f64) as usize;
                Ok(if w <= h { (s, new_long) } else { (new_long, s) })
            }
            ProcessorSize::HeightWidth { height, width } => {
                if height == 0 || width == 0 {
                    return Err(TransformError::BadSize("height/width of 0".into()));
                }
                Ok((width, height))
            }
        }
    }
}

/// transformers' `center_crop`: offsets `(dim - crop) // 2`; a crop larger
/// than the picture pads with zeros around it.
fn hf_center_crop(f: &RgbFrame, ch: usize, cw: usize) -> RgbFrame {
    let (w, h) = (f.width as i64, f.height as i64);
    let top = (h - ch as i64).div_euclid(2);
    let left = (w - cw as i64).div_euclid(2);
    let mut data = vec![0u8; ch * cw * 3];
    for y in 0..ch as i64 {
        let sy = y + top;
        if sy < 0 || sy >= h {
            continue;
        }
        for x in 0..cw as i64 {
            let sx = x + left;
            if sx < 0 || sx >= w {
                continue;
            }
            let s = ((sy * w + sx) * 3) as usize;
            let d = ((y * cw as i64 + x) * 3) as usize;
            data[d..d + 3].copy_from_slice(&f.data[s..s + 3]);
        }
    }
    RgbFrame { width: cw as u32, height: ch as u32, data, time_secs: f.time_secs }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Clip {
        let data = (0..3 * h * w).map(|i| (i % (w * h)) as f32).collect();
        Clip { t: 1, c: 3, h, w, data }
    }

    #[test]
    fn identity_resize_keeps_values() {
        let c = ramp(7, 5);
        let r = c.resize(5, 7, true).unwrap();
        for (a, b) in c.data.iter().zip(&r.data) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn crop_errors_instead_of_panicking() {
        let c = ramp(8, 6);
        assert!(matches!(c.center_crop(7, 4), Err(TransformError::CropTooLarge { .. })));
        assert_eq!(c.center_crop(2, 4).unwrap().data[0], 2.0 * 8.0 + 2.0);
    }

    #[test]
    fn hflip_twice_is_identity() {
        let c = ramp(5, 3);
        assert_eq!(c.hflip().hflip(), c);
        assert_eq!(c.hflip().data[0], 4.0);
    }
}
