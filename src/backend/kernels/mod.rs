//! Kernels for inference on the CPU backend, where Burn's own ops leave time
//! on the table for long token sequences (VideoMAE's 1568 tokens, ViViT's
//! 3136): attention, and the GELU activations (Burn evaluates them with scalar
//! libm calls; here they are branch-free and vectorised).
//!
//! Attention: `softmax(q k^T / sqrt(dh)) v` per (batch, sequence, head), in
//! blocks of query rows: one gemm for a block's scores against every key, a
//! vectorised softmax, one gemm against the values (plain loops for sequences
//! too short for gemm). Tasks run in parallel on rayon's pool (the one Burn's
//! CPU backend uses). The inputs stay in the `[batch, tokens, hidden]` layout
//! the projections produce (heads are column ranges) and in their token order:
//! [`Groups`] says which tokens form a sequence, so TimeSformer's temporal and
//! spatial attentions need no reordering copies. Each task copies its head's
//! keys (transposed) and values into contiguous buffers, which gemm packs
//! fastest. Only for inference: it reads the tensors' values, so no gradient
//! flows through it; training on the CPU wraps the same kernel in an autodiff
//! operation with its own backward pass ([`grad`]).
//!
//! Linear layers: one multithreaded gemm reading the weight and the input in
//! place, starting from the bias and, in a residual block, from the residual.

use std::mem::MaybeUninit;

use burn::nn::Linear;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::host::{to_device, to_host, HostTensor};

pub mod grad;

/// `fn $name(args) -> ret` that runs `$generic` (an `#[inline(always)]` fn
/// written so the compiler vectorises it) compiled for AVX-512F, or for AVX2 +
/// FMA, when the CPU has them, and as built otherwise.
macro_rules! simd_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $generic:ident) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $generic($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $generic($($arg),*)
        }
    };
}
use simd_dispatch;

/// Bytes of one block's scores (`rows x tokens` f32): they stay in L2.
const SCORE_BYTES: usize = 192 * 1568 * 4;
/// Query rows per block: as many as fit [`SCORE_BYTES`] (192 for VideoMAE's
/// 1568 tokens, 96 for ViViT's 3136), within these bounds. 192 rather than 128
/// rows made VideoMAE's products 25% faster on 2 cores (fewer re-packings of
/// the keys and values).
const QB_MIN: usize = 64;
const QB_MAX: usize = 192;
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

/// Which tokens of a `[batch, tokens, hidden]` tensor attend to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Groups {
    /// All tokens, one sequence.
    All,
    /// TimeSformer's temporal attention over tokens `1 + patch * frames + frame`:
    /// each patch's `frames` consecutive tokens form a sequence. Token 0 (CLS)
    /// takes no part; its output is zero.
    Frames(usize),
    /// TimeSformer's spatial attention: for each frame `f`, token 0 (CLS) and
    /// the tokens `1 + patch * frames + f`. Token 0's output is the mean of its
    /// outputs over the frames.
    Patches(usize),
}

impl Groups {
    /// (sequences per batch, tokens per sequence) among `n` tokens.
    pub(super) fn shape(self, n: usize) -> (usize, usize) {
        match self {
            Groups::All => (1, n),
            Groups::Frames(f) => ((n - 1) / f, f),
            Groups::Patches(f) => (f, 1 + (n - 1) / f),
        }
    }

    /// The token (row within its batch) of sequence `seq`'s `i`-th member.
    fn token(self, seq: usize, i: usize) -> usize {
        match self {
            Groups::All => i,
            Groups::Frames(f) => 1 + seq * f + i,
            Groups::Patches(_) if i == 0 => 0,
            Groups::Patches(f) => 1 + (i - 1) * f + seq,
        }
    }

    /// Whether `n` tokens split into these groups.
    pub(super) fn fits(self, n: usize) -> bool {
        match self {
            Groups::All => true,
            Groups::Frames(f) | Groups::Patches(f) => f > 0 && n > 0 && (n - 1).is_multiple_of(f),
        }
    }
}

/// # Shapes
/// q, k, v: `[batch, tokens, heads * dh]` -> `[batch, tokens, heads * dh]`
///
/// # Panics
/// If the tokens do not split into `groups` (models check the clip's shape before their forward pass).
pub fn attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize, groups: Groups) -> Tensor<3> {
    let n = q.dims()[1];
    assert!(groups.fits(n), "{n} tokens do not split into {groups:?}");
    attention_on_host(q, k, v, heads, groups, 0.0)
}

/// [`attention`] over all tokens with its logits soft-capped before the softmax:
/// `cap * tanh(logits / cap)` (VideoPrism's `attn_logit_softcapping`).
///
/// # Shapes
/// q, k, v: `[batch, tokens, heads * dh]` -> `[batch, tokens, heads * dh]`
pub fn capped_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize, cap: f32) -> Tensor<3> {
    attention_on_host(q, k, v, heads, Groups::All, cap)
}

/// [`attention_host`] on the tensors' data, back on their device.
fn attention_on_host(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize, groups: Groups, cap: f32) -> Tensor<3> {
    let device = q.device();
    let dims = q.dims();
    let (q, k, v) = (to_host(q).data, to_host(k).data, to_host(v).data);
    let out = attention_host(&q, &k, &v, dims, heads, groups, None, cap);
    to_device(HostTensor::new(dims.to_vec(), out), &device)
}

/// `x @ weight + bias` for a Linear layer, plus `residual` with `Some((residual, skip))`
/// except in the first `skip` tokens of each batch (which keep the residual alone).
/// One multithreaded gemm reads the weight and `x` in place and starts from
/// the bias (and the residual), where Burn's Linear adds the bias in a second
/// pass over the output, and a residual add makes a third: a VideoMAE-base pass
/// went from 1.26 to 1.13 s on 2 cores with the bias alone. Hands the residual
/// back if the tensors are not contiguous f32 tensors of the CPU backend.
///
/// # Shapes
/// x: `[batch, tokens, d_in]`, residual: `[batch, tokens, d_out]` -> `[batch, tokens, d_out]`
pub fn linear(l: &Linear, x: &Tensor<3>, residual: Residual) -> Result<Tensor<3>, Residual> {
    let (weight, input) =
        (l.weight.val().try_into_primitive::<burn_flex::Flex>(), x.clone().try_into_primitive::<burn_flex::Flex>());
    let (Ok(weight), Ok(input)) = (weight, input) else { return Err(residual) };
    let (Some(w), Some(xs)) = (weight.as_slice::<f32>(), input.as_slice::<f32>()) else { return Err(residual) };
    let [d_in, d_out] = l.weight.dims();
    let [b, n, x_in] = x.dims();
    let m = b * n;
    if x_in != d_in || residual.as_ref().is_some_and(|(r, skip)| r.dims() != [b, n, d_out] || *skip > n) {
        return Err(residual);
    }
    let bias = l.bias.as_ref().map(|b| to_host(b.val()).data);
    // gemm adds to what `out` starts with unless it starts as zeros.
    let read_dst = bias.is_some() || residual.is_some();
    let (mut out, skip) = match residual {
        Some((r, skip)) => {
            let mut out = to_host(r).data;
            if let Some(bias) = &bias {
                out.par_chunks_mut(d_out * ROWS_PER_TASK).enumerate().for_each(|(chunk, rows)| {
                    for (i, row) in rows.chunks_exact_mut(d_out).enumerate() {
                        if (chunk * ROWS_PER_TASK + i) % n >= skip {
                            row.iter_mut().zip(bias).for_each(|(o, b)| *o += b);
                        }
                    }
                });
            }
            (out, skip)
        }
        None => (bias.as_ref().map_or_else(|| zeroed(m * d_out), |b| repeat_rows(b, m)), 0),
    };
    // Each batch's tokens from `skip` on; one call for all of them when none is skipped.
    let (calls, rows) = if skip == 0 { (1, m) } else { (b, n - skip) };
    for call in 0..calls {
        let row0 = call * n + skip;
        // SAFETY: x is [m, d_in], w [d_in, d_out] and out [m, d_out], all row-major and
        // of those lengths (checked above); rows row0..row0 + rows lie inside them.
        unsafe {
            matmul_threaded(
                [rows, d_out, d_in],
                (out.as_mut_ptr().add(row0 * d_out), d_out),
                (xs.as_ptr().add(row0 * d_in), d_in as isize, 1),
                (w.as_ptr(), d_out as isize, 1),
                read_dst,
            );
        }
    }
    Ok(to_device(HostTensor::new(vec![b, n, d_out], out), &x.device()))
}

/// Rows of an output that one thread fills at a time.
const ROWS_PER_TASK: usize = 64;

/// A vector of `len` values written by all threads, `chunk` at a time, by
/// `fill` (which must write every value of its chunk). One thread's stores
/// cannot use the memory bandwidth that two have: with the bias rows of a
/// VideoMAE-base layer's query, key, value and first MLP outputs (34 MB)
/// written by one thread, a forward pass on 2 cores took about 4% longer.
fn par_filled(len: usize, chunk: usize, fill: impl Fn(&mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len].par_chunks_mut(chunk.max(1)).for_each(&fill);
    // SAFETY: `fill` wrote all `len` values (the chunks cover them).
    unsafe { out.set_len(len) };
    out
}

/// `m` copies of `row`, one after another (see [`par_filled`]).
pub(super) fn repeat_rows(row: &[f32], m: usize) -> Vec<f32> {
    par_filled(m * row.len(), row.len() * ROWS_PER_TASK, |rows| {
        for dst in rows.chunks_exact_mut(row.len()) {
            dst.iter_mut().zip(row).for_each(|(d, &x)| {
                d.write(x);
            });
        }
    })
}

/// `len` zeros (see [`par_filled`]): where `vec![0.0; len]` reuses freed
/// memory it clears it from one thread.
pub(super) fn zeroed(len: usize) -> Vec<f32> {
    par_filled(len, 1 << 15, |c| c.fill(MaybeUninit::new(0.0)))
}

/// A residual to add and the tokens of each batch that keep it alone; handed
/// back unused (and uncopied) when [`linear`] cannot run.
pub type Residual = Option<(Tensor<3>, usize)>;

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

/// Sequences shorter than this skip gemm (whose call overhead outweighs a few
/// hundred multiply-adds): TimeSformer's temporal attention over 8 frames.
pub(super) const SHORT: usize = 32;

/// The attention of [`attention`] on host buffers. With `lse` (only for
/// [`Groups::All`]), also writes each query row's log-sum-exp of its scaled
/// scores (`[batch, heads, tokens]`, what the backward pass needs to rebuild
/// the probabilities). With `cap` > 0, the scaled scores are soft-capped
/// (`cap * tanh(x / cap)`) before the softmax.
#[allow(clippy::too_many_arguments)]
pub(super) fn attention_host(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    [b, n, d]: [usize; 3],
    heads: usize,
    groups: Groups,
    lse: Option<&mut [f32]>,
    cap: f32,
) -> Vec<f32> {
    debug_assert!(groups.fits(n) && (lse.is_none() || groups == Groups::All));
    let dh = d / heads;
    let (seqs, len) = groups.shape(n);
    let mut out = zeroed(b * n * d);
    // Token 0's output in each sequence of Groups::Patches, averaged over them after.
    let shared_first = matches!(groups, Groups::Patches(_));
    let mut firsts = vec![0f32; if shared_first { b * seqs * d } else { 0 }];
    let (dst, first_dst) = (SharedMut(out.as_mut_ptr()), SharedMut(firsts.as_mut_ptr()));
    let lse = lse.map(|l| SharedMut(l.as_mut_ptr()));
    let scale = 1.0 / (dh as f32).sqrt();
    let qb = query_block(len).min(len);
    (0..b * seqs * heads).into_par_iter().for_each_init(
        || {
            let head = || vec![0f32; len * dh];
            let block = || vec![0f32; qb * dh];
            (vec![0f32; qb * len], vec![0f32; 2 * qb], [head(), head()], [block(), block()])
        },
        |(scores, stats, [kt, vh], [qh, oh]), task| {
            let (bs, h) = (task / heads, task % heads);
            let (bi, seq) = (bs / seqs, bs % seqs);
            // Where member i's slice of this head starts in q, k, v and out.
            let at = |i: usize| (bi * n + groups.token(seq, i)) * d + h * dh;
            // The head's keys and values, contiguous: values [len, dh]; keys
            // transposed [dh, len] for gemm, as rows [len, dh] for short sequences.
            for i in 0..len {
                let (ks, vs) = (&k[at(i)..at(i) + dh], &v[at(i)..at(i) + dh]);
                vh[i * dh..(i + 1) * dh].copy_from_slice(vs);
                if len < SHORT {
                    kt[i * dh..(i + 1) * dh].copy_from_slice(ks);
                } else {
                    ks.iter().enumerate().for_each(|(c, &x)| kt[c * len + i] = x);
                }
            }
            for q0 in (0..len).step_by(qb) {
                let rows = qb.min(len - q0);
                for r in 0..rows {
                    qh[r * dh..(r + 1) * dh].copy_from_slice(&q[at(q0 + r)..at(q0 + r) + dh]);
                }
                let s = &mut scores[..rows * len];
                let (sums, shifts) = stats.split_at_mut(qb);
                let o = &mut oh[..rows * dh];
                if len < SHORT {
                    short_scores(&qh[..rows * dh], kt, dh, s);
                } else {
                    // SAFETY: qh is rows x dh, kt dh x len and s rows x len, all contiguous.
                    unsafe {
                        matmul(
                            [rows, len, dh],
                            (s.as_mut_ptr(), len),
                            (qh.as_ptr(), dh as isize, 1),
                            (kt.as_ptr(), len as isize, 1),
                            false,
                        );
                    }
                }
                if cap > 0.0 {
                    // Soft-capped logits, kept in units of the unscaled scores (the softmax scales them).
                    let (into, back) = (scale / cap, cap / scale);
                    s.iter_mut().for_each(|x| *x = back * (*x * into).tanh());
                }
                softmax_rows(s, len, scale, &mut sums[..rows], &mut shifts[..rows]);
                if len < SHORT {
                    short_context(s, vh, dh, o);
                } else {
                    // SAFETY: s is rows x len, vh len x dh and o rows x dh, all contiguous.
                    unsafe {
                        matmul(
                            [rows, dh, len],
                            (o.as_mut_ptr(), dh),
                            (s.as_ptr(), len as isize, 1),
                            (vh.as_ptr(), dh as isize, 1),
                            false,
                        );
                    }
                }
                for (r, (row, &sum)) in o.chunks_exact(dh).zip(sums.iter()).enumerate() {
                    let target = if shared_first && q0 + r == 0 {
                        // SAFETY: entry bs of the [b * seqs, d] buffer, this head's columns.
                        unsafe { first_dst.get().add(bs * d + h * dh) }
                    } else {
                        // SAFETY: each token belongs to one sequence, so this task alone
                        // writes this head's columns of it.
                        unsafe { dst.get().add(at(q0 + r)) }
                    };
                    let inv = 1.0 / sum;
                    // SAFETY: dh values from `target`, inside its buffer (above).
                    let target = unsafe { std::slice::from_raw_parts_mut(target, dh) };
                    target.iter_mut().zip(row).for_each(|(t, &x)| *t = x * inv);
                }
                if let Some(l) = lse {
                    for r in 0..rows {
                        // SAFETY: entry (bi, h, q0 + r) of [b, heads, n]; Groups::All, so bs == bi.
                        unsafe { *l.get().add(task * n + q0 + r) = shifts[r] + sums[r].ln() };
                    }
                }
            }
        },
    );
    if shared_first {
        let inv = 1.0 / seqs as f32;
        for (bi, per_seq) in firsts.chunks_exact(seqs * d).enumerate() {
            let first = &mut out[bi * n * d..bi * n * d + d];
            for row in per_seq.chunks_exact(d) {
                first.iter_mut().zip(row).for_each(|(t, &x)| *t += x * inv);
            }
        }
    }
    out
}

simd_dispatch! {
    /// `s[r, j] = q[r] . k[j]` for a short sequence: `q` is `[rows, dh]`, `k` `[len, dh]`, `s` `[rows, len]`.
    pub(super) fn short_scores(q: &[f32], k: &[f32], dh: usize, s: &mut [f32]) => short_scores_generic
}

#[inline(always)]
fn short_scores_generic(q: &[f32], k: &[f32], dh: usize, s: &mut [f32]) {
    let len = s.len() / (q.len() / dh);
    for (qr, sr) in q.chunks_exact(dh).zip(s.chunks_exact_mut(len)) {
        for (kr, x) in k.chunks_exact(dh).zip(sr.iter_mut()) {
            let mut acc = [0f32; LANES];
            let (qc, kc) = (qr.chunks_exact(LANES), kr.chunks_exact(LANES));
            let tail: f32 = qc.remainder().iter().zip(kc.remainder()).map(|(a, b)| a * b).sum();
            for (a, b) in qc.zip(kc) {
                for i in 0..LANES {
                    acc[i] += a[i] * b[i];
                }
            }
            *x = tail + acc.iter().sum::<f32>();
        }
    }
}

simd_dispatch! {
    /// `o[r] = sum_j p[r, j] v[j]` for a short sequence: `p` is `[rows, len]`, `v` `[len, dh]`, `o` `[rows, dh]`.
    pub(super) fn short_context(p: &[f32], v: &[f32], dh: usize, o: &mut [f32]) => short_context_generic
}

#[inline(always)]
fn short_context_generic(p: &[f32], v: &[f32], dh: usize, o: &mut [f32]) {
    let len = p.len() / (o.len() / dh);
    for (pr, or) in p.chunks_exact(len).zip(o.chunks_exact_mut(dh)) {
        or.fill(0.0);
        for (&w, vr) in pr.iter().zip(v.chunks_exact(dh)) {
            or.iter_mut().zip(vr).for_each(|(o, &x)| *o += w * x);
        }
    }
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
    dims: [usize; 3],
    dst: (*mut f32, usize),
    lhs: (*const f32, isize, isize),
    rhs: (*const f32, isize, isize),
    accumulate: bool,
) {
    // SAFETY: forwarded from the caller.
    unsafe { gemm_f32(dims, dst, lhs, rhs, accumulate, gemm::Parallelism::None) }
}

/// [`matmul`] on all of rayon's threads, for one large product.
///
/// # Safety
/// As for [`matmul`].
pub(super) unsafe fn matmul_threaded(
    dims: [usize; 3],
    dst: (*mut f32, usize),
    lhs: (*const f32, isize, isize),
    rhs: (*const f32, isize, isize),
    accumulate: bool,
) {
    // SAFETY: forwarded from the caller.
    unsafe { gemm_f32(dims, dst, lhs, rhs, accumulate, gemm::Parallelism::Rayon(rayon::current_num_threads())) }
}

/// # Safety
/// As for [`matmul`].
unsafe fn gemm_f32(
    [m, n, k]: [usize; 3],
    dst: (*mut f32, usize),
    lhs: (*const f32, isize, isize),
    rhs: (*const f32, isize, isize),
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let alpha = if accumulate { 1.0 } else { 0.0 };
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
            alpha,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// A counter-based random number: the same for the same `(seed, index)` in
/// any order, on any thread and for any backend (SplitMix64's finaliser).
#[inline(always)]
pub fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A dropout mask of `len` values, PyTorch's semantics: each unit of `group`
/// consecutive values is kept with probability `1 - p` (scaled by
/// `1 / (1 - p)`) or dropped (0) as a whole. `group` 1 is element-wise
/// dropout; a sample's whole row block is drop-path (stochastic depth).
/// Unit `u` is kept when `mix(seed, u)`'s top 24 bits, as a uniform number
/// in [0, 1), are at least `p`.
pub fn dropout_mask(len: usize, p: f64, seed: u64, group: usize) -> Vec<f32> {
    let group = group.max(1);
    let scale = if p < 1.0 { (1.0 / (1.0 - p)) as f32 } else { 0.0 };
    let mut out = vec![0f32; len];
    let per_task = group * (((1 << 16) / group).max(1));
    out.par_chunks_mut(per_task).enumerate().for_each(|(c, chunk)| {
        let first_unit = (c * per_task / group) as u64;
        for (j, unit) in chunk.chunks_mut(group).enumerate() {
            let u = (mix(seed, first_unit + j as u64) >> 40) as f64 / (1u64 << 24) as f64;
            unit.fill(if u >= p { scale } else { 0.0 });
        }
    });
    out
}

/// GELU, exact (`erf`; `tanh_approx` false) or the tanh approximation (`gelu_fast`,
/// `gelu_new`), elementwise.
pub fn gelu(x: Tensor<3>, tanh_approx: bool) -> Tensor<3> {
    let device = x.device();
    let mut h = to_host(x);
    h.data.par_chunks_mut(1 << 16).for_each(|c| gelu_slice(c, tanh_approx));
    to_device(h, &device)
}

simd_dispatch! {
    pub(super) fn gelu_slice(v: &mut [f32], tanh_approx: bool) => gelu_slice_generic
}

#[inline(always)]
fn gelu_slice_generic(v: &mut [f32], tanh_approx: bool) {
    if tanh_approx {
        v.iter_mut().for_each(|x| *x = *x * tanh_gate(*x));
    } else {
        v.iter_mut().for_each(|x| *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2)));
    }
}

simd_dispatch! {
    /// GELU's backward pass: `g *= gelu'(x)`, elementwise.
    pub(super) fn gelu_grad_slice(g: &mut [f32], x: &[f32], tanh_approx: bool) => gelu_grad_slice_generic
}

#[inline(always)]
fn gelu_grad_slice_generic(g: &mut [f32], x: &[f32], tanh_approx: bool) {
    if tanh_approx {
        // d/dx [x s(x)] = s + x s (1 - s) C (1 + 3 * 0.044715 x^2), s = sigmoid(C (x + 0.044715 x^3)).
        for (g, &x) in g.iter_mut().zip(x) {
            let s = tanh_gate(x);
            *g *= s + x * s * (1.0 - s) * TANH_C * (1.0 + 3.0 * 0.044_715 * x * x);
        }
    } else {
        // Phi(x) + x phi(x).
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for (g, &x) in g.iter_mut().zip(x) {
            let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
            *g *= cdf + x * INV_SQRT_2PI * exp_nonpositive(-0.5 * x * x);
        }
    }
}

/// `2 * sqrt(2 / pi)`: `0.5 (1 + tanh(z)) = sigmoid(2 z)`.
const TANH_C: f32 = 1.595_769;

/// The tanh approximation's gate, `0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`,
/// written as `sigmoid(C (x + 0.044715 x^3))`: GELU is `x` times it.
#[inline(always)]
fn tanh_gate(x: f32) -> f32 {
    let z = TANH_C * (x + 0.044_715 * x * x * x);
    let e = exp_nonpositive(-z.abs());
    if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
#[inline(always)]
fn erf(u: f32) -> f32 {
    let a = u.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp_nonpositive(-a * a);
    if u >= 0.0 {
        y
    } else {
        -y
    }
}

simd_dispatch! {
    /// Replaces each row of `s` (rows of `n` scores) by `exp((s - max) * scale)`
    /// and writes each row's sum to `sums` (the caller divides by it) and its
    /// `max * scale` to `shifts`.
    fn softmax_rows(s: &mut [f32], n: usize, scale: f32, sums: &mut [f32], shifts: &mut [f32]) => softmax_rows_generic
}

/// Lanes of the reductions: wide enough for AVX-512, and for the compiler to vectorise.
pub(super) const LANES: usize = 16;

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
/// with `r` in [-ln2/2, ln2/2] and a degree-5 polynomial fitted for least
/// maximum relative error (as accurate as the degree-7 Taylor series, in two
/// multiply-adds fewer). Branch-free, so loops over it vectorise.
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
    let p = 1.000_000_1
        + r * (0.999_999_7 + r * (0.499_988_94 + r * (0.166_675_75 + r * (0.041_915_383 + r * 0.008_297_655))));
    let two_k = f32::from_bits(((ki + 127) as u32) << 23);
    p * two_k
}

/// One AdamW step's per-element constants, in f32 as the update computes them.
pub struct AdamWStep {
    /// Gradient scale from clipping.
    pub clip: f32,
    /// Decoupled weight decay factor `1 - lr * weight_decay` (1 without decay).
    pub decay: f32,
    /// beta1.
    pub beta1: f32,
    /// beta2.
    pub beta2: f32,
    /// `1 - beta1`, rounded from f64 as PyTorch passes it.
    pub one_minus_beta1: f32,
    /// `1 - beta2`, likewise.
    pub one_minus_beta2: f32,
    /// `sqrt(1 - beta2^t)`.
    pub bc2_sqrt: f32,
    /// eps.
    pub eps: f32,
    /// `lr / (1 - beta1^t)`.
    pub step_size: f32,
}

/// The AdamW update of one parameter on the CPU backend: one pass over the
/// parameter, its gradient and both moments, in place, with every operation
/// and rounding of the tensor-by-tensor form (PyTorch's single-tensor
/// AdamW). That form takes 14 passes over memory: on 2 cores a
/// VideoMAE-base step (86 M parameters) took 0.39 s against PyTorch's 0.16 s.
pub fn adamw(
    p: Tensor<1>,
    g: Tensor<1>,
    moments: Option<(Tensor<1>, Tensor<1>)>,
    k: &AdamWStep,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let device = p.device();
    let n = p.dims()[0];
    let (mut p, g) = (to_host(p).data, to_host(g).data);
    let (mut m, mut v) = match moments {
        Some((m, v)) => (to_host(m).data, to_host(v).data),
        None => (vec![0f32; n], vec![0f32; n]),
    };
    const CHUNK: usize = 1 << 14;
    p.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((p, m), v), g)| {
            for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                let g = g * k.clip;
                if k.decay != 1.0 {
                    *p *= k.decay;
                }
                *m = *m * k.beta1 + g * k.one_minus_beta1;
                *v = *v * k.beta2 + g * g * k.one_minus_beta2;
                let denom = v.sqrt() / k.bc2_sqrt + k.eps;
                *p -= *m / denom * k.step_size;
            }
        });
    let flat = |data: Vec<f32>| to_device(HostTensor::new(vec![n], data), &device);
    (flat(p), flat(m), flat(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

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

    /// Deterministic values in [-3, 3).
    fn values(shape: [usize; 3], seed: u32) -> Tensor<3> {
        let v: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|i| {
                let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed.wrapping_mul(40_503));
                (x >> 8) as f32 / (1u32 << 24) as f32 * 6.0 - 3.0
            })
            .collect();
        Tensor::<3>::from_data(TensorData::new(v, shape), &Device::flex())
    }

    fn max_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// Against Burn's own attention on the same values, with a sequence that is
    /// not a multiple of the query block, and several batches and heads.
    #[test]
    fn matches_burns_attention() {
        let (b, n, heads, dh) = (2, 300, 3, 16);
        let shape = [b, n, heads * dh];
        let (q, k, v) = (values(shape, 1), values(shape, 2), values(shape, 3));
        let want = crate::backend::ops::heads_attention(q.clone(), k.clone(), v.clone(), heads);
        let diff = max_diff(attention(q, k, v, heads, Groups::All), want);
        // Outputs are up to 3 in size: this is float summation order, a few ulp.
        assert!(diff < 5e-5, "max |diff| {diff}");
    }

    /// TimeSformer's temporal and spatial groups against Burn's attention over
    /// the tokens reordered as transformers does (`[batch * patches, frames]`;
    /// `[batch * frames, 1 + patches]` with CLS repeated, its outputs averaged),
    /// for short sequences (plain loops) and long ones (gemm).
    #[test]
    fn groups_match_burns_attention_on_reordered_tokens() {
        let heads_attention = crate::backend::ops::heads_attention;
        for (b, patches, frames) in [(2, 40, 3), (1, 10, 5)] {
            let (heads, dh) = (2, 8);
            let (n, d) = (1 + patches * frames, heads * dh);
            let (q, k, v) = (values([b, n, d], 4), values([b, n, d], 5), values([b, n, d], 6));
            let tokens = |t: &Tensor<3>| t.clone().narrow(1, 1, n - 1);

            // Temporal: each patch's frames, CLS apart (output zero).
            let by_patch = |t: &Tensor<3>| tokens(t).reshape([b * patches, frames, d]);
            let want = heads_attention(by_patch(&q), by_patch(&k), by_patch(&v), heads).reshape([b, n - 1, d]);
            let got = attention(q.clone(), k.clone(), v.clone(), heads, Groups::Frames(frames));
            let cls: f32 = got.clone().narrow(1, 0, 1).abs().max().into_scalar();
            let diff = max_diff(tokens(&got), want);
            assert!(cls == 0.0 && diff < 5e-5, "frames: CLS {cls}, max |diff| {diff}");

            // Spatial: each frame's patches with CLS.
            let by_frame = |t: &Tensor<3>| {
                let x = tokens(t).reshape([b, patches, frames, d]).swap_dims(1, 2).reshape([b * frames, patches, d]);
                let cls = t.clone().narrow(1, 0, 1).repeat_dim(1, frames).reshape([b * frames, 1, d]);
                Tensor::cat(vec![cls, x], 1)
            };
            let out = heads_attention(by_frame(&q), by_frame(&k), by_frame(&v), heads); // [b*frames, 1+patches, d]
            let cls = out.clone().narrow(1, 0, 1).reshape([b, frames, d]).mean_dim(1);
            let rest = out.narrow(1, 1, patches).reshape([b, frames, patches, d]).swap_dims(1, 2);
            let want = Tensor::cat(vec![cls, rest.reshape([b, patches * frames, d])], 1);
            let diff = max_diff(attention(q, k, v, heads, Groups::Patches(frames)), want);
            assert!(diff < 5e-5, "patches: max |diff| {diff}");
        }
    }

    /// The Linear path, alone and with a residual whose first tokens are kept,
    /// against Burn's Linear.
    #[test]
    fn linear_matches_burns_with_and_without_residual() {
        let (b, n, d_in, d_out, skip) = (2, 70, 24, 40, 1);
        let l = burn::nn::LinearConfig::new(d_in, d_out).init(&Device::flex());
        let (x, r) = (values([b, n, d_in], 7), values([b, n, d_out], 8));
        let y = l.forward(x.clone());
        let plain = linear(&l, &x, None).unwrap_or_else(|_| panic!("a contiguous CPU tensor"));
        let diff = max_diff(plain, y.clone());
        assert!(diff < 1e-5, "plain: max |diff| {diff}");
        let got = linear(&l, &x, Some((r.clone(), skip))).unwrap_or_else(|_| panic!("a contiguous CPU tensor"));
        let kept = max_diff(got.clone().narrow(1, 0, skip), r.clone().narrow(1, 0, skip));
        let diff = max_diff(got.narrow(1, skip, n - skip), (r + y).narrow(1, skip, n - skip));
        assert!(kept == 0.0 && diff < 1e-5, "residual: kept rows moved by {kept}, max |diff| {diff}");
    }
}
