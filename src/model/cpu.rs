//! Kernels for inference on the CPU backend, where Burn's own ops leave time
//! on the table for long token sequences (VideoMAE's 1568 tokens, ViViT's
//! 3136): attention, and the GELU activations (Burn evaluates them with scalar
//! libm calls; here they are branch-free and vectorised).
//!
//! Attention: `softmax(q k^T / sqrt(dh)) v` per (batch, head), in blocks of query rows:
//! one gemm for a block's scores against every key, a vectorised softmax, one
//! gemm against the values. Heads run in parallel on rayon's pool (the one
//! Burn's CPU backend uses). The inputs stay in the `[batch, tokens, hidden]`
//! layout the projections produce (heads are column ranges); each task copies
//! its head's keys (transposed) and values into contiguous buffers, which gemm
//! packs fastest. Only for inference: it reads the tensors' values, so no
//! gradient flows through it; training on the CPU wraps the same kernel in an
//! autodiff operation with its own backward pass (`cpu_grad`).

use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

use super::layers::{to_device, to_host};
use super::weights::HostTensor;

/// Bytes of one block's scores (`rows x tokens` f32): they stay in L2.
const SCORE_BYTES: usize = 192 * 1568 * 4;
/// Query rows per block: as many as fit [`SCORE_BYTES`] (192 for VideoMAE's
/// 1568 tokens, 96 for ViViT's 3136), within these bounds. 192 rather than 128
/// rows made VideoMAE's products 25% faster on 2 cores (fewer re-packings of
/// the keys and values).
const QB_MIN: usize = 64;
const QB_MAX: usize = 192;
/// Shorter sequences go through Burn's attention (its materialised path is fast there).
pub const MIN_TOKENS: usize = 128;

/// Whether `x` may take these kernels: the CPU backend, outside autodiff, long enough.
pub fn applies(x: &Tensor<3>) -> bool {
    x.dims()[1] >= MIN_TOKENS && for_inference(&x.device())
}

/// Whether `d` is the CPU backend outside autodiff, where these kernels may run.
pub fn for_inference(d: &Device) -> bool {
    !d.is_autodiff() && *d == Device::flex()
}

/// A pointer that may be shared between the threads writing disjoint parts of one buffer.
#[derive(Clone, Copy)]
pub(super) struct SharedMut(pub(super) *mut f32);
// SAFETY: every task writes its own (row, column-range) blocks of the buffer.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer (a method, so closures capture the whole Send + Sync wrapper).
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// # Shapes
/// q, k, v: `[batch, tokens, heads * dh]` -> `[batch, tokens, heads * dh]`
pub fn attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    let device = q.device();
    let dims = q.dims();
    let (q, k, v) = (to_host(q).data, to_host(k).data, to_host(v).data);
    let out = attention_host(&q, &k, &v, dims, heads, None);
    to_device(HostTensor::new(dims.to_vec(), out), &device)
}

/// `x @ weight + bias` for a Linear layer, by one multithreaded gemm that reads
/// the weight in place and starts from the bias, where Burn's Linear adds the
/// bias in a second pass over the output: a VideoMAE-base pass went from 1.26
/// to 1.13 s on 2 cores.
///
/// # Shapes
/// x: `[batch, tokens, d_in]` -> `[batch, tokens, d_out]`
pub fn linear(l: &Linear, x: Tensor<3>) -> Tensor<3> {
    let Ok(weight) = l.weight.val().try_into_primitive::<burn_flex::Flex>() else {
        return l.forward(x);
    };
    let (Some(w), [d_in, d_out]) = (weight.as_slice::<f32>(), l.weight.dims()) else {
        return l.forward(x);
    };
    let device = x.device();
    let [b, n, _] = x.dims();
    let xs = to_host(x).data;
    let m = b * n;
    let mut out = match &l.bias {
        Some(bias) => to_host(bias.val()).data.repeat(m),
        None => vec![0f32; m * d_out],
    };
    // SAFETY: x is [m, d_in], w [d_in, d_out] and out [m, d_out], all row-major and
    // of those lengths (the Linear's shapes, checked by Burn when it was built).
    unsafe {
        gemm::gemm(
            m,
            d_out,
            d_in,
            out.as_mut_ptr(),
            1,
            d_out as isize,
            l.bias.is_some(),
            xs.as_ptr(),
            1,
            d_in as isize,
            w.as_ptr(),
            1,
            d_out as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
    }
    to_device(HostTensor::new(vec![b, n, d_out], out), &device)
}

/// Query rows per block for `n` tokens.
pub(super) fn query_block(n: usize) -> usize {
    (SCORE_BYTES / (4 * n.max(1))).clamp(QB_MIN, QB_MAX)
}

/// A head's rows `[n, dh]` (columns `base..base + dh` of an `[n, d]` matrix at
/// row stride `d`) copied contiguously into `rows`, or transposed (`[dh, n]`) into `cols`.
pub(super) fn gather_head(
    src: &[f32],
    base: usize,
    d: usize,
    n: usize,
    dh: usize,
    rows: Option<&mut [f32]>,
    cols: Option<&mut [f32]>,
) {
    if let Some(rows) = rows {
        for j in 0..n {
            rows[j * dh..(j + 1) * dh].copy_from_slice(&src[base + j * d..base + j * d + dh]);
        }
    }
    if let Some(cols) = cols {
        for j in 0..n {
            for (c, &x) in src[base + j * d..base + j * d + dh].iter().enumerate() {
                cols[c * n + j] = x;
            }
        }
    }
}

/// The attention of [`attention`] on host buffers. With `lse`, also writes each
/// query row's log-sum-exp of its scaled scores (`[batch, heads, tokens]`, what
/// the backward pass needs to rebuild the probabilities).
pub(super) fn attention_host(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    [b, n, d]: [usize; 3],
    heads: usize,
    lse: Option<&mut [f32]>,
) -> Vec<f32> {
    let dh = d / heads;
    let mut out = vec![0f32; b * n * d];
    let dst = SharedMut(out.as_mut_ptr());
    let lse = lse.map(|l| SharedMut(l.as_mut_ptr()));
    let scale = 1.0 / (dh as f32).sqrt();
    let qb = query_block(n);
    (0..b * heads).into_par_iter().for_each_init(
        || (vec![0f32; qb * n], vec![0f32; 2 * qb], vec![0f32; n * dh], vec![0f32; n * dh]),
        |(scores, stats, kt, vh), task| {
            let (bi, h) = (task / heads, task % heads);
            let base = bi * n * d + h * dh;
            // The head's keys transposed ([dh, n]) and values ([n, dh]), contiguous:
            // gemm packs them for every block of queries, fastest from contiguous rows.
            gather_head(k, base, d, n, dh, None, Some(kt));
            gather_head(v, base, d, n, dh, Some(vh), None);
            for q0 in (0..n).step_by(qb) {
                let rows = qb.min(n - q0);
                let s = &mut scores[..rows * n];
                let (sums, shifts) = stats.split_at_mut(qb);
                // SAFETY: the pointers and strides stay inside q (a rows x dh block of
                // its [n, d] row-major matrix), kt, vh and the local score buffer.
                unsafe {
                    // scores[rows, n] = q_block[rows, dh] @ kt[dh, n]
                    matmul(
                        [rows, n, dh],
                        (s.as_mut_ptr(), n),
                        (q.as_ptr().add(base + q0 * d), d as isize, 1),
                        (kt.as_ptr(), n as isize, 1),
                        false,
                    );
                }
                softmax_rows(s, n, scale, &mut sums[..rows], &mut shifts[..rows]);
                // SAFETY: this task alone writes rows q0..q0+rows, columns h*dh..(h+1)*dh
                // of batch bi, and entries task*n+q0.. of lse.
                unsafe {
                    let o = dst.get().add(base + q0 * d);
                    // out_block[rows, dh] = p[rows, n] @ vh[n, dh]
                    matmul([rows, dh, n], (o, d), (s.as_ptr(), n as isize, 1), (vh.as_ptr(), dh as isize, 1), false);
                    for (r, &sum) in sums[..rows].iter().enumerate() {
                        let row = std::slice::from_raw_parts_mut(o.add(r * d), dh);
                        let inv = 1.0 / sum;
                        row.iter_mut().for_each(|x| *x *= inv);
                    }
                    if let Some(l) = lse {
                        for r in 0..rows {
                            *l.get().add(task * n + q0 + r) = shifts[r] + sums[r].ln();
                        }
                    }
                }
            }
        },
    );
    out
}

/// `dst[m, n] = lhs[m, k] @ rhs[k, n]` (`+=` with `accumulate`), single-threaded,
/// f32. `dst` is (pointer, row stride) with unit column stride; `lhs` and `rhs`
/// are (pointer, row stride, column stride), so a transposed operand is just
/// swapped strides.
///
/// # Safety
/// Every element addressed by the shapes and strides must lie inside its buffer,
/// and `dst` must not be written by anyone else meanwhile.
pub(super) unsafe fn matmul(
    [m, n, k]: [usize; 3],
    dst: (*mut f32, usize),
    lhs: (*const f32, isize, isize),
    rhs: (*const f32, isize, isize),
    accumulate: bool,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            1,
            dst.1 as isize,
            accumulate,
            lhs.0,
            lhs.2,
            lhs.1,
            rhs.0,
            rhs.2,
            rhs.1,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// GELU, exact (`erf`; `tanh_approx` false) or the tanh approximation (`gelu_fast`,
/// `gelu_new`), elementwise.
pub fn gelu(x: Tensor<3>, tanh_approx: bool) -> Tensor<3> {
    let device = x.device();
    let mut h = to_host(x);
    h.data.par_chunks_mut(1 << 16).for_each(|c| gelu_slice(c, tanh_approx));
    to_device(h, &device)
}

fn gelu_slice(v: &mut [f32], tanh_approx: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { gelu_slice_avx512(v, tanh_approx) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { gelu_slice_avx2(v, tanh_approx) };
        }
    }
    gelu_slice_generic(v, tanh_approx)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gelu_slice_avx512(v: &mut [f32], tanh_approx: bool) {
    gelu_slice_generic(v, tanh_approx)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_slice_avx2(v: &mut [f32], tanh_approx: bool) {
    gelu_slice_generic(v, tanh_approx)
}

#[inline(always)]
fn gelu_slice_generic(v: &mut [f32], tanh_approx: bool) {
    if tanh_approx {
        v.iter_mut().for_each(|x| *x = gelu_tanh(*x));
    } else {
        v.iter_mut().for_each(|x| *x = gelu_erf(*x));
    }
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, written as `x * sigmoid(2z)`.
#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 1.595_769_1; // 2 * sqrt(2 / pi)
    let z = C * (x + 0.044_715 * x * x * x);
    let e = exp_nonpositive(-z.abs());
    let s = if z >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
    x * s
}

/// `0.5 x (1 + erf(x / sqrt(2)))`, with erf by Abramowitz and Stegun 7.1.26
/// (absolute error below 1.5e-7).
#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    let u = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = u.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp_nonpositive(-a * a);
    let erf = if u >= 0.0 { y } else { -y };
    0.5 * x * (1.0 + erf)
}

/// Replaces each row of `s` (rows of `n` scores) by `exp((s - max) * scale)`
/// and writes each row's sum to `sums` (the caller divides by it) and its
/// `max * scale` to `shifts`.
fn softmax_rows(s: &mut [f32], n: usize, scale: f32, sums: &mut [f32], shifts: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { softmax_rows_avx512(s, n, scale, sums, shifts) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { softmax_rows_avx2(s, n, scale, sums, shifts) };
        }
    }
    softmax_rows_generic(s, n, scale, sums, shifts)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_rows_avx512(s: &mut [f32], n: usize, scale: f32, sums: &mut [f32], shifts: &mut [f32]) {
    softmax_rows_generic(s, n, scale, sums, shifts)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_rows_avx2(s: &mut [f32], n: usize, scale: f32, sums: &mut [f32], shifts: &mut [f32]) {
    softmax_rows_generic(s, n, scale, sums, shifts)
}

/// Lanes of the reductions: wide enough for AVX-512, and for the compiler to vectorise.
const LANES: usize = 16;

#[inline(always)]
fn softmax_rows_generic(s: &mut [f32], n: usize, scale: f32, sums: &mut [f32], shifts: &mut [f32]) {
    for ((row, sum), shift_out) in s.chunks_exact_mut(n).zip(sums.iter_mut()).zip(shifts.iter_mut()) {
        let mut m = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for i in 0..LANES {
                m[i] = if c[i] > m[i] { c[i] } else { m[i] };
            }
        }
        let mut max = chunks.remainder().iter().fold(f32::NEG_INFINITY, |a, &x| if x > a { x } else { a });
        for x in m {
            max = if x > max { x } else { max };
        }
        let shift = max * scale;
        *shift_out = shift;
        let mut acc = [0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for i in 0..LANES {
                let e = exp_nonpositive(c[i] * scale - shift);
                c[i] = e;
                acc[i] += e;
            }
        }
        let mut total: f32 = 0.0;
        for x in chunks.into_remainder() {
            *x = exp_nonpositive(*x * scale - shift);
            total += *x;
        }
        *sum = total + acc.iter().sum::<f32>();
    }
}

/// `e^x` for `x <= 0` (0 below -87), relative error about 2e-7: `2^k * e^r`
/// with `r` in [-ln2/2, ln2/2] and a degree-7 Taylor polynomial. Branch-free,
/// so loops over it vectorise.
#[inline(always)]
pub(super) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Rounding to the nearest integer by the 1.5 * 2^23 trick (no round instruction needed).
    const MAGIC: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    let t = x * LOG2E + MAGIC;
    let k = t - MAGIC;
    // k as an integer, read from t's low mantissa bits: a float-to-int `as` cast
    // would saturate lane by lane and stop the loop from vectorising.
    let ki = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let two_k = f32::from_bits(((ki + 127) as u32) << 23);
    p * two_k
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn exp_matches_the_standard_library() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (got, want) = (exp_nonpositive(x), x.exp());
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_3;
        }
        assert!(worst < 4e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(-200.0), (-87.0f32).exp());
    }

    /// Against Burn's GELUs (libm's erf and tanh) over [-10, 10].
    #[test]
    fn gelus_match_burns() {
        let device = Device::flex();
        let v: Vec<f32> = (0..20_001).map(|i| -10.0 + i as f32 * 0.001).collect();
        let x = Tensor::<3>::from_data(TensorData::new(v, [1, 1, 20_001]), &device);
        for tanh_approx in [false, true] {
            let want = if tanh_approx {
                burn::tensor::activation::gelu_approximate(x.clone())
            } else {
                burn::tensor::activation::gelu(x.clone())
            };
            let diff: f32 = (gelu(x.clone(), tanh_approx) - want).abs().max().into_scalar();
            assert!(diff < 2e-6, "tanh_approx {tanh_approx}: max |diff| {diff}");
        }
    }

    /// Against Burn's own attention on the same values, with a sequence that is
    /// not a multiple of the query block, and several batches and heads.
    #[test]
    fn matches_burns_attention() {
        let device = Device::flex();
        let (b, n, heads, dh) = (2, 300, 3, 16);
        let d = heads * dh;
        let data = |seed: u32| {
            let v: Vec<f32> = (0..b * n * d)
                .map(|i| {
                    let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed.wrapping_mul(40_503));
                    (x >> 8) as f32 / (1u32 << 24) as f32 * 6.0 - 3.0
                })
                .collect();
            Tensor::<3>::from_data(TensorData::new(v, [b, n, d]), &device)
        };
        let (q, k, v) = (data(1), data(2), data(3));
        assert!(applies(&q));
        let want = super::super::layers::heads_attention(q.clone(), k.clone(), v.clone(), heads);
        let got = attention(q, k, v, heads);
        let diff: f32 = (got - want).abs().max().into_scalar();
        // Outputs are up to 3 in size: this is float summation order, a few ulp.
        assert!(diff < 5e-5, "max |diff| {diff}");
    }
}
