//! Attention for training on the CPU backend: one autodiff operation whose
//! forward pass is [`super`]'s blocked kernel and whose backward pass
//! recomputes the probabilities block by block from the saved log-sum-exp
//! (as FlashAttention does), instead of Burn's generic attention, which
//! records a matmul, the softmax's elementwise steps and another matmul, and
//! keeps each `heads x tokens x tokens` intermediate (118 MB per layer and clip
//! for VideoMAE-base) alive until the backward pass.
//!
//! LayerNorm likewise: one operation that saves the normalised input and each
//! row's reciprocal standard deviation, with a two-pass backward, where Burn
//! records nine elementwise and reduction ops (each a pass over the
//! activations, forward and backward).
//!
//! For one head, with `P = softmax(scale * Q K^T)`, `O = P V` and the upstream
//! gradient `dO`: `dV = P^T dO`, `dP = dO V^T`, `dS = P * (dP - rowsum(dO * O))`,
//! `dQ = scale * dS K`, `dK = scale * dS^T Q`.

use std::sync::Arc;

use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use super::{
    attention_host, exp_nonpositive, gather_head, gelu_grad_slice, gelu_slice, matmul, matmul_threaded, query_block,
    repeat_rows, short_context, short_scores, simd_dispatch, zeroed, Groups, SharedMut, LANES, SHORT,
};

/// The autodiff backend the CPU trains on.
type Ad = Autodiff<Flex>;

/// What the backward pass needs, on the host.
#[derive(Clone, Debug)]
struct Saved {
    /// q, k, v and the output, contiguous ([`contiguous`]): shared, not copied.
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    out: FlexTensor,
    lse: Arc<Vec<f32>>,
    dims: [usize; 3],
    heads: usize,
}

#[derive(Debug)]
struct FusedAttention;

impl Backward<Flex, 3> for FusedAttention {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        let d_out = host(grads.consume::<Flex>(&ops.node));
        let (dq, dk, dv) = attention_backward(&s, &d_out);
        for (parent, g) in ops.parents.into_iter().zip([dq, dk, dv]) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(g, s.dims)));
            }
        }
    }
}

/// `out` recorded as the result of `op` on `parents`, with `state` (what the
/// backward pass needs) built only when a gradient will flow back through it.
fn record<O: Backward<Flex, N>, const N: usize>(
    op: O,
    parents: [NodeGuard; N],
    out: FlexTensor,
    state: impl FnOnce(&FlexTensor) -> O::State,
) -> Tensor<3> {
    let result = match op.prepare::<NoCheckpointing>(parents).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let saved = state(&out);
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive::<Ad>(result)
}

/// A Flex tensor's values, row-major.
fn host(t: FlexTensor) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()
}

/// `t` itself if its f32 values lie contiguously in its buffer (a projection's
/// output always does), else a contiguous copy.
fn contiguous(t: &FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t.clone()
    } else {
        let shape = t.layout().shape().clone();
        FlexTensor::from_data(TensorData::new(host(t.clone()), shape))
    }
}

/// The values of a tensor made by [`contiguous`], in place.
fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("made contiguous f32 by `contiguous`")
}

/// `softmax(q k^T / sqrt(dh)) v` over `heads` column ranges, differentiable
/// with respect to q, k and v; `None` (the inputs are left as they are) if
/// they are not tensors of the CPU autodiff backend.
///
/// # Shapes
/// q, k, v: `[batch, tokens, heads * dh]` -> `[batch, tokens, heads * dh]`
pub fn attention(q: &Tensor<3>, k: &Tensor<3>, v: &Tensor<3>, heads: usize) -> Option<Tensor<3>> {
    let dims = q.dims();
    let prim = |t: &Tensor<3>| t.clone().try_into_primitive::<Ad>().ok();
    let (q, k, v) = (prim(q)?, prim(k)?, prim(v)?);
    let (qh, kh, vh) = (contiguous(q.primitive()), contiguous(k.primitive()), contiguous(v.primitive()));
    let [b, n, _] = dims;
    let mut lse = vec![0f32; b * heads * n];
    let out = attention_host(values(&qh), values(&kh), values(&vh), dims, heads, Groups::All, Some(&mut lse), 0.0);
    let out = FlexTensor::from_data(TensorData::new(out, dims));
    Some(record(FusedAttention, [q.node(), k.node(), v.node()], out, |out| Saved {
        q: qh,
        k: kh,
        v: vh,
        out: out.clone(),
        lse: Arc::new(lse),
        dims,
        heads,
    }))
}

#[derive(Debug)]
struct FusedGelu;

impl Backward<Flex, 1> for FusedGelu {
    /// The input, and whether GELU is the tanh approximation.
    type State = (FlexTensor, bool);

    fn backward(self, ops: Ops<(FlexTensor, bool), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, tanh_approx) = ops.state;
        let mut g = host(grads.consume::<Flex>(&ops.node));
        let [x_node] = ops.parents;
        if let Some(node) = x_node {
            g.par_chunks_mut(CHUNK)
                .zip(values(&x).par_chunks(CHUNK))
                .for_each(|(g, x)| gelu_grad_slice(g, x, tanh_approx));
            let shape = x.layout().shape().clone();
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(g, shape)));
        }
    }
}

/// Elements per parallel task of the elementwise passes.
const CHUNK: usize = 1 << 16;

/// GELU, exact or the tanh approximation, as one autodiff operation with
/// vidi's vectorised GELU and its derivative (Burn's evaluates libm's `erf`
/// one value at a time, and builds the tanh form from six tracked ops).
/// `None` if `x` is not a tensor of the CPU autodiff backend.
pub fn gelu(x: &Tensor<3>, tanh_approx: bool) -> Option<Tensor<3>> {
    let dims = x.dims();
    let x = x.clone().try_into_primitive::<Ad>().ok()?;
    let xt = contiguous(x.primitive());
    let mut y = values(&xt).to_vec();
    y.par_chunks_mut(CHUNK).for_each(|c| gelu_slice(c, tanh_approx));
    let out = FlexTensor::from_data(TensorData::new(y, dims));
    Some(record(FusedGelu, [x.node()], out, |_| (xt, tanh_approx)))
}

#[derive(Debug)]
struct FusedLinear;

impl Backward<Flex, 3> for FusedLinear {
    /// The input `[rows, d_in]` and the weight `[d_in, d_out]`, both contiguous.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<(FlexTensor, FlexTensor), 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, w) = ops.state;
        let dy_t = contiguous(&grads.consume::<Flex>(&ops.node));
        let (xs, ws, dy) = (values(&x), values(&w), values(&dy_t));
        let (x_shape, w_shape) = (x.layout().shape().clone(), w.layout().shape().clone());
        let (d_in, d_out) = (w_shape[0], w_shape[1]);
        let rows = dy.len() / d_out;
        let [x_node, w_node, b_node] = ops.parents;
        if let Some(node) = x_node {
            // dx[rows, d_in] = dy[rows, d_out] @ w^T
            let mut dx = zeroed(rows * d_in);
            // SAFETY: the shapes and strides address dy, w (read transposed) and dx within their lengths.
            unsafe {
                matmul_threaded(
                    [rows, d_in, d_out],
                    (dx.as_mut_ptr(), d_in),
                    (dy.as_ptr(), d_out as isize, 1),
                    (ws.as_ptr(), 1, d_out as isize),
                    false,
                );
            }
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, x_shape)));
        }
        if let Some(node) = w_node {
            // dw[d_in, d_out] = x^T @ dy
            let mut dw = zeroed(d_in * d_out);
            // SAFETY: as above, with x read transposed.
            unsafe {
                matmul_threaded(
                    [d_in, d_out, rows],
                    (dw.as_mut_ptr(), d_out),
                    (xs.as_ptr(), 1, d_in as isize),
                    (dy.as_ptr(), d_out as isize, 1),
                    false,
                );
            }
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dw, w_shape)));
        }
        if let Some(node) = b_node {
            let db = dy
                .par_chunks(ROWS * d_out)
                .map(|chunk| {
                    let mut acc = vec![0f32; d_out];
                    for row in chunk.chunks_exact(d_out) {
                        acc.iter_mut().zip(row).for_each(|(a, &g)| *a += g);
                    }
                    acc
                })
                .reduce(
                    || vec![0f32; d_out],
                    |mut a, b| {
                        a.iter_mut().zip(&b).for_each(|(a, &x)| *a += x);
                        a
                    },
                );
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(db, [d_out])));
        }
    }
}

/// A Linear layer with a bias as one autodiff operation: one gemm starting
/// from the bias forward, two gemms and a column sum backward, each writing
/// its own buffer (Burn's matmul zeroes and then copies every output it
/// allocates, and adds the bias in a pass of its own). `None` if the tensors
/// are not of the CPU autodiff backend or the layer has no bias.
///
/// # Shapes
/// x: `[batch, tokens, d_in]` -> `[batch, tokens, d_out]`
pub fn linear(l: &Linear, x: &Tensor<3>) -> Option<Tensor<3>> {
    let [b, n, d_in] = x.dims();
    let [w_in, d_out] = l.weight.dims();
    let bias = l.bias.as_ref()?.val().try_into_primitive::<Ad>().ok()?;
    let (x, w) = (x.clone().try_into_primitive::<Ad>().ok()?, l.weight.val().try_into_primitive::<Ad>().ok()?);
    if w_in != d_in {
        return None;
    }
    let (xt, wt, bt) = (contiguous(x.primitive()), contiguous(w.primitive()), contiguous(bias.primitive()));
    let (xs, ws) = (values(&xt), values(&wt));
    let rows = b * n;
    let mut y = repeat_rows(values(&bt), rows);
    // SAFETY: x is [rows, d_in], w [d_in, d_out] and y [rows, d_out], contiguous.
    unsafe {
        matmul_threaded(
            [rows, d_out, d_in],
            (y.as_mut_ptr(), d_out),
            (xs.as_ptr(), d_in as isize, 1),
            (ws.as_ptr(), d_out as isize, 1),
            true,
        );
    }
    let out = FlexTensor::from_data(TensorData::new(y, [b, n, d_out]));
    Some(record(FusedLinear, [x.node(), w.node(), bias.node()], out, |_| (xt, wt)))
}

/// What LayerNorm's backward pass needs, on the host.
#[derive(Clone, Debug)]
struct NormSaved {
    /// `(x - mean) * rstd`, row by row.
    xhat: Arc<Vec<f32>>,
    /// Each row's `1 / sqrt(var + eps)`.
    rstd: Arc<Vec<f32>>,
    gamma: Arc<Vec<f32>>,
    dims: [usize; 3],
}

#[derive(Debug)]
struct FusedLayerNorm;

impl Backward<Flex, 3> for FusedLayerNorm {
    type State = NormSaved;

    fn backward(self, ops: Ops<NormSaved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        let dy = host(grads.consume::<Flex>(&ops.node));
        let d = s.dims[2];
        let [x_node, gamma_node, beta_node] = ops.parents;
        if let Some(node) = x_node {
            let mut dx = zeroed(dy.len());
            dx.par_chunks_mut(ROWS * d)
                .zip(dy.par_chunks(ROWS * d))
                .zip(s.xhat.par_chunks(ROWS * d))
                .zip(s.rstd.par_chunks(ROWS))
                .for_each(|(((dx, dy), xhat), rstd)| norm_backward_rows(dx, dy, xhat, rstd, &s.gamma));
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, s.dims)));
        }
        if gamma_node.is_some() || beta_node.is_some() {
            // Per-chunk sums of dy * xhat and dy, then their total.
            let (dgamma, dbeta) = dy
                .par_chunks(ROWS * d)
                .zip(s.xhat.par_chunks(ROWS * d))
                .map(|(dy, xhat)| {
                    let (mut dg, mut db) = (vec![0f32; d], vec![0f32; d]);
                    norm_param_sums(dy, xhat, &mut dg, &mut db);
                    (dg, db)
                })
                .reduce(
                    || (vec![0f32; d], vec![0f32; d]),
                    |(mut g, mut b), (g2, b2)| {
                        g.iter_mut().zip(&g2).for_each(|(a, x)| *a += x);
                        b.iter_mut().zip(&b2).for_each(|(a, x)| *a += x);
                        (g, b)
                    },
                );
            for (node, g) in [(gamma_node, dgamma), (beta_node, dbeta)] {
                if let Some(node) = node {
                    grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(g, [d])));
                }
            }
        }
    }
}

/// Rows per parallel task of the LayerNorm passes.
const ROWS: usize = 64;

/// `(x - mean) / sqrt(var + eps) * gamma + beta` over the last dimension,
/// differentiable with respect to x, gamma and beta; `None` if they are not
/// tensors of the CPU autodiff backend.
///
/// # Shapes
/// x: `[batch, tokens, d]`, gamma and beta: `[d]` -> `[batch, tokens, d]`
pub fn layer_norm(x: &Tensor<3>, gamma: &Tensor<1>, beta: &Tensor<1>, eps: f64) -> Option<Tensor<3>> {
    let dims = x.dims();
    let d = dims[2];
    let x = x.clone().try_into_primitive::<Ad>().ok()?;
    let (g, b) = (gamma.clone().try_into_primitive::<Ad>().ok()?, beta.clone().try_into_primitive::<Ad>().ok()?);
    let (xt, gamma_t, beta_t) = (contiguous(x.primitive()), contiguous(g.primitive()), contiguous(b.primitive()));
    let (xs, gamma_h, beta_h) = (values(&xt), Arc::new(values(&gamma_t).to_vec()), values(&beta_t));
    if gamma_h.len() != d || beta_h.len() != d {
        return None;
    }
    let rows = xs.len() / d;
    let (mut y, mut xhat, mut rstd) = (zeroed(xs.len()), zeroed(xs.len()), vec![0f32; rows]);
    y.par_chunks_mut(ROWS * d)
        .zip(xhat.par_chunks_mut(ROWS * d))
        .zip(rstd.par_chunks_mut(ROWS))
        .zip(xs.par_chunks(ROWS * d))
        .for_each(|(((y, xhat), rstd), x)| norm_rows(x, &gamma_h, beta_h, eps as f32, y, xhat, rstd));
    let out = FlexTensor::from_data(TensorData::new(y, dims));
    Some(record(FusedLayerNorm, [x.node(), g.node(), b.node()], out, |_| NormSaved {
        xhat: Arc::new(xhat),
        rstd: Arc::new(rstd),
        gamma: gamma_h,
        dims,
    }))
}

simd_dispatch! {
    /// LayerNorm's forward pass over rows of `gamma.len()` values.
    fn norm_rows(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32], xhat: &mut [f32], rstd: &mut [f32])
        => norm_rows_generic
}

#[inline(always)]
fn norm_rows_generic(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    xhat: &mut [f32],
    rstd: &mut [f32],
) {
    let d = gamma.len();
    for (((x, y), xh), r) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)).zip(xhat.chunks_exact_mut(d)).zip(rstd) {
        let mean = lane_sum([x], |[v]| v) / d as f32;
        let var = lane_sum([x], |[v]| (v - mean) * (v - mean)) / d as f32;
        *r = 1.0 / (var + eps).sqrt();
        for (((xh, y), &v), (&g, &b)) in xh.iter_mut().zip(y.iter_mut()).zip(x).zip(gamma.iter().zip(beta)) {
            *xh = (v - mean) * *r;
            *y = *xh * g + b;
        }
    }
}

simd_dispatch! {
    /// LayerNorm's input gradient: `rstd * (g - mean(g) - xhat * mean(g * xhat))` with `g = dy * gamma`.
    fn norm_backward_rows(dx: &mut [f32], dy: &[f32], xhat: &[f32], rstd: &[f32], gamma: &[f32]) => norm_backward_rows_generic
}

#[inline(always)]
fn norm_backward_rows_generic(dx: &mut [f32], dy: &[f32], xhat: &[f32], rstd: &[f32], gamma: &[f32]) {
    let d = gamma.len();
    for (((dx, dy), xh), &r) in dx.chunks_exact_mut(d).zip(dy.chunks_exact(d)).zip(xhat.chunks_exact(d)).zip(rstd) {
        let m1 = lane_sum([dy, gamma], |[a, g]| a * g) / d as f32;
        let m2 = lane_sum([dy, gamma, xh], |[a, g, x]| a * g * x) / d as f32;
        for (((o, &a), &g), &x) in dx.iter_mut().zip(dy).zip(gamma).zip(xh) {
            *o = r * (a * g - m1 - x * m2);
        }
    }
}

simd_dispatch! {
    /// Adds `sum over rows of dy * xhat` to `dgamma` and `sum of dy` to `dbeta`.
    fn norm_param_sums(dy: &[f32], xhat: &[f32], dgamma: &mut [f32], dbeta: &mut [f32]) => norm_param_sums_generic
}

#[inline(always)]
fn norm_param_sums_generic(dy: &[f32], xhat: &[f32], dgamma: &mut [f32], dbeta: &mut [f32]) {
    let d = dgamma.len();
    for (dy, xh) in dy.chunks_exact(d).zip(xhat.chunks_exact(d)) {
        for (((g, b), &a), &x) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(dy).zip(xh) {
            *g += a * x;
            *b += a;
        }
    }
}

/// `sum_j f(s[0][j], .., s[K-1][j])` in [`LANES`] independent accumulators,
/// so that it vectorises.
#[inline(always)]
fn lane_sum<const K: usize>(s: [&[f32]; K], f: impl Fn([f32; K]) -> f32) -> f32 {
    let n = s[0].len();
    let full = n / LANES * LANES;
    let mut acc = [0f32; LANES];
    for c in (0..full).step_by(LANES) {
        let chunk: [&[f32]; K] = std::array::from_fn(|k| &s[k][c..c + LANES]);
        for (i, a) in acc.iter_mut().enumerate() {
            *a += f(std::array::from_fn(|k| chunk[k][i]));
        }
    }
    let tail: f32 = (full..n).map(|j| f(std::array::from_fn(|k| s[k][j]))).sum();
    tail + acc.iter().sum::<f32>()
}

/// The gradients with respect to q, k and v (each `[batch, tokens, d]`).
fn attention_backward(s: &Saved, d_out: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    if s.dims[1] < SHORT {
        return short_attention_backward(s, d_out);
    }
    let [b, n, d] = s.dims;
    let heads = s.heads;
    let dh = d / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let qb = query_block(n);
    let (mut dq, mut dk, mut dv) = (zeroed(b * n * d), zeroed(b * n * d), zeroed(b * n * d));
    let (dq_p, dk_p, dv_p) = (SharedMut(dq.as_mut_ptr()), SharedMut(dk.as_mut_ptr()), SharedMut(dv.as_mut_ptr()));
    (0..b * heads).into_par_iter().for_each_init(
        || {
            let head = || vec![0f32; n * dh];
            (vec![0f32; qb * n], vec![0f32; qb * n], [head(), head(), head(), head(), head()], vec![0f32; n])
        },
        |(p, ds, [kt, k_rows, vt, dk_h, dv_h], row_dot), task| {
            let (bi, h) = (task / heads, task % heads);
            let base = bi * n * d + h * dh;
            gather_head(values(&s.k), base, d, n, dh, Some(k_rows), Some(kt));
            gather_head(values(&s.v), base, d, n, dh, None, Some(vt));
            dk_h.fill(0.0);
            dv_h.fill(0.0);
            output_dots(d_out, values(&s.out), base, d, dh, row_dot);
            let lse = &s.lse[task * n..(task + 1) * n];
            for q0 in (0..n).step_by(qb) {
                let rows = qb.min(n - q0);
                let (p, ds) = (&mut p[..rows * n], &mut ds[..rows * n]);
                let (q_blk, do_blk) = (values(&s.q)[base + q0 * d..].as_ptr(), d_out[base + q0 * d..].as_ptr());
                // SAFETY: every operand is a rows x dh block of an [n, d] matrix at row
                // stride d (q, dO, dQ: rows q0.. of this head's columns), a local
                // [n, dh] / [dh, n] head buffer or a local rows x n block.
                unsafe {
                    // P = exp(scale * Q K^T - lse)
                    matmul(
                        [rows, n, dh],
                        (p.as_mut_ptr(), n),
                        (q_blk, d as isize, 1),
                        (kt.as_ptr(), n as isize, 1),
                        false,
                    );
                    probabilities(p, n, scale, &lse[q0..q0 + rows]);
                    // dV += P^T dO
                    matmul(
                        [n, dh, rows],
                        (dv_h.as_mut_ptr(), dh),
                        (p.as_ptr(), 1, n as isize),
                        (do_blk, d as isize, 1),
                        true,
                    );
                    // dP = dO V^T, then dS = scale * P * (dP - rowsum(dO * O))
                    matmul(
                        [rows, n, dh],
                        (ds.as_mut_ptr(), n),
                        (do_blk, d as isize, 1),
                        (vt.as_ptr(), n as isize, 1),
                        false,
                    );
                    for ((ds_row, p_row), &dot) in
                        ds.chunks_exact_mut(n).zip(p.chunks_exact(n)).zip(&row_dot[q0..q0 + rows])
                    {
                        for (g, &pr) in ds_row.iter_mut().zip(p_row) {
                            *g = scale * pr * (*g - dot);
                        }
                    }
                    // dQ = dS K (this task alone writes these rows of this head's columns)
                    matmul(
                        [rows, dh, n],
                        (dq_p.get().add(base + q0 * d), d),
                        (ds.as_ptr(), n as isize, 1),
                        (k_rows.as_ptr(), dh as isize, 1),
                        false,
                    );
                    // dK += dS^T Q
                    matmul(
                        [n, dh, rows],
                        (dk_h.as_mut_ptr(), dh),
                        (ds.as_ptr(), 1, n as isize),
                        (q_blk, d as isize, 1),
                        true,
                    );
                }
            }
            for (dst, src) in [(dk_p, &*dk_h), (dv_p, &*dv_h)] {
                // SAFETY: this head's columns of this batch's rows, written by this task alone.
                unsafe { scatter_head(src, dst, base, d, dh) };
            }
        },
    );
    (dq, dk, dv)
}

simd_dispatch! {
    /// Scores to probabilities in place: `exp(scale * s - lse)` per row.
    fn probabilities(p: &mut [f32], n: usize, scale: f32, lse: &[f32]) => probabilities_generic
}

#[inline(always)]
fn probabilities_generic(p: &mut [f32], n: usize, scale: f32, lse: &[f32]) {
    for (row, &l) in p.chunks_exact_mut(n).zip(lse) {
        // scale * s <= lse up to rounding, so the exponent is (about) non-positive.
        row.iter_mut().for_each(|x| *x = exp_nonpositive((*x * scale - l).min(0.0)));
    }
}

/// `rowsum(dO * O)` of each query of one head: `dots[i]` from the `dh` values
/// at `base + i * d` of the output gradient and the output.
fn output_dots(d_out: &[f32], out: &[f32], base: usize, d: usize, dh: usize, dots: &mut [f32]) {
    for (i, dot) in dots.iter_mut().enumerate() {
        let r = base + i * d;
        *dot = d_out[r..r + dh].iter().zip(&out[r..r + dh]).map(|(a, b)| a * b).sum();
    }
}

/// The reverse of [`gather_head`]'s rows: each `[dh]` row `j` of `rows` to
/// `dst + base + j * d`.
///
/// # Safety
/// Those ranges lie inside `dst`'s buffer and no other thread touches them.
unsafe fn scatter_head(rows: &[f32], dst: SharedMut, base: usize, d: usize, dh: usize) {
    for (j, row) in rows.chunks_exact(dh).enumerate() {
        // SAFETY: forwarded from the caller.
        unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), dst.get().add(base + j * d), dh) };
    }
}

/// [`attention_backward`] for sequences under [`SHORT`] tokens (TimeSformer's
/// temporal attention over 8 frames), by plain vectorised loops: a gemm call
/// per 8 x 8 product would cost more than the product.
fn short_attention_backward(s: &Saved, d_out: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [b, n, d] = s.dims;
    let heads = s.heads;
    let dh = d / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let (mut dq, mut dk, mut dv) = (zeroed(b * n * d), zeroed(b * n * d), zeroed(b * n * d));
    let (dq_p, dk_p, dv_p) = (SharedMut(dq.as_mut_ptr()), SharedMut(dk.as_mut_ptr()), SharedMut(dv.as_mut_ptr()));
    let (q, k, v, out) = (values(&s.q), values(&s.k), values(&s.v), values(&s.out));
    (0..b * heads).into_par_iter().with_min_len(64).for_each_init(
        || {
            let head = || vec![0f32; n * dh];
            let square = || vec![0f32; n * n];
            ([head(), head(), head(), head(), head()], [square(), square(), square(), square()], vec![0f32; n])
        },
        |([qh, kh, vh, doh, gh], [p, ds, p_t, ds_t], row_dot), task| {
            let (bi, h) = (task / heads, task % heads);
            let base = bi * n * d + h * dh;
            for (src, dst) in [(q, &mut *qh), (k, &mut *kh), (v, &mut *vh), (d_out, &mut *doh)] {
                gather_head(src, base, d, n, dh, Some(dst), None);
            }
            output_dots(d_out, out, base, d, dh, row_dot);
            // P = exp(scale * Q K^T - lse); dP = dO V^T; dS = scale * P * (dP - rowsum(dO * O)).
            short_scores(qh, kh, dh, p);
            probabilities(p, n, scale, &s.lse[task * n..(task + 1) * n]);
            short_scores(doh, vh, dh, ds);
            for ((ds_row, p_row), &dot) in ds.chunks_exact_mut(n).zip(p.chunks_exact(n)).zip(row_dot.iter()) {
                for (g, &pr) in ds_row.iter_mut().zip(p_row) {
                    *g = scale * pr * (*g - dot);
                }
            }
            for (m, t) in [(&*p, &mut *p_t), (&*ds, &mut *ds_t)] {
                for i in 0..n {
                    for j in 0..n {
                        t[j * n + i] = m[i * n + j];
                    }
                }
            }
            // dQ = dS K, dK = dS^T Q, dV = P^T dO; each task alone writes its head's columns of its rows.
            for (dst, weights, rows) in [(dq_p, &*ds, &*kh), (dk_p, &*ds_t, &*qh), (dv_p, &*p_t, &*doh)] {
                short_context(weights, rows, dh, gh);
                // SAFETY: this head's columns of this batch's rows, written by this task alone.
                unsafe { scatter_head(gh, dst, base, d, dh) };
            }
        },
    );
    (dq, dk, dv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    /// `got` within 1e-4 (relative to the largest entry, at least 1) of `want`,
    /// and `want` not vanishing.
    fn assert_gradient_close<const D: usize>(got: Tensor<D>, want: Tensor<D>, name: &str) {
        let scale: f32 = want.clone().abs().max().into_scalar();
        let diff: f32 = (got - want).abs().max().into_scalar();
        assert!(scale > 1e-2 && diff < 1e-4 * scale.max(1.0), "d{name}: max |diff| {diff} (largest {scale})");
    }

    /// Against Burn's own attention under autodiff: the outputs, and the gradients
    /// of a weighted sum of them with respect to q, k and v.
    #[test]
    fn gradients_match_burns_attention() {
        let device = Device::flex().autodiff();
        // 200 tokens: gemm in blocks of queries; 8 (TimeSformer's frames): plain loops.
        for (b, n, heads, dh) in [(2, 200, 3, 16), (70, 8, 3, 16)] {
            let d = heads * dh;
            let input = |s: f64| Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, s), &device).require_grad();
            let (q, k, v) = (input(1.0), input(1.0), input(1.0));
            let weights = Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &device);
            let got = attention(&q, &k, &v, heads).expect("CPU autodiff tensors");
            let want = crate::backend::ops::heads_attention(q.clone(), k.clone(), v.clone(), heads);
            let diff: f32 = (got.clone() - want.clone()).abs().max().into_scalar();
            assert!(diff < 5e-5, "{n} tokens: outputs: max |diff| {diff}");
            let g_got = (got * weights.clone()).sum().backward();
            let g_want = (want * weights).sum().backward();
            for (name, t) in [("q", &q), ("k", &k), ("v", &v)] {
                let (a, w) = (t.grad(&g_got).expect("gradient"), t.grad(&g_want).expect("gradient"));
                assert_gradient_close(a, w, &format!("{name} ({n} tokens)"));
            }
        }
    }

    /// Against Burn's LayerNorm decomposition under autodiff: the outputs, and the
    /// gradients of a weighted sum of them with respect to x, gamma and beta.
    #[test]
    fn layer_norm_matches_burns() {
        let device = Device::flex().autodiff();
        // 70 rows: a chunk of 64 and a partial one; 100 columns: not a multiple of the lanes.
        let (b, n, d, eps) = (2, 35, 100, 1e-6);
        let x = (Tensor::<3>::random([b, n, d], Distribution::Normal(0.5, 2.0), &device)).require_grad();
        let gamma = Tensor::<1>::random([d], Distribution::Normal(1.0, 0.5), &device).require_grad();
        let beta = Tensor::<1>::random([d], Distribution::Normal(0.0, 0.5), &device).require_grad();
        let weights = Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &device);
        let got = layer_norm(&x, &gamma, &beta, eps).expect("CPU autodiff tensors");
        let want = burn::tensor::module::layer_norm(x.clone(), gamma.clone(), Some(beta.clone()), eps);
        let diff: f32 = (got.clone() - want.clone()).abs().max().into_scalar();
        assert!(diff < 1e-5, "outputs: max |diff| {diff}");
        let g_got = (got * weights.clone()).sum().backward();
        let g_want = (want * weights).sum().backward();
        let flat = |t: &Tensor<3>, g: &burn::tensor::Gradients| t.grad(g).expect("gradient").reshape([b * n * d]);
        let checks = [
            (flat(&x, &g_got), flat(&x, &g_want), "x"),
            (gamma.grad(&g_got).expect("gradient"), gamma.grad(&g_want).expect("gradient"), "gamma"),
            (beta.grad(&g_got).expect("gradient"), beta.grad(&g_want).expect("gradient"), "beta"),
        ];
        for (a, w, name) in checks {
            assert_gradient_close(a, w, name);
        }
    }

    /// Both GELUs against Burn's under autodiff over [-8, 8]: values and gradients.
    #[test]
    fn gelus_match_burns() {
        let device = Device::flex().autodiff();
        let v: Vec<f32> = (0..16_001).map(|i| -8.0 + i as f32 * 0.001).collect();
        for tanh_approx in [false, true] {
            let x = Tensor::<3>::from_data(TensorData::new(v.clone(), [1, 1, v.len()]), &device).require_grad();
            let got = gelu(&x, tanh_approx).expect("a CPU autodiff tensor");
            let want = if tanh_approx {
                burn::tensor::activation::gelu_approximate(x.clone())
            } else {
                burn::tensor::activation::gelu(x.clone())
            };
            let diff: f32 = (got.clone() - want.clone()).abs().max().into_scalar();
            assert!(diff < 2e-6, "tanh_approx {tanh_approx}: values: max |diff| {diff}");
            let (g_got, g_want) = (got.sum().backward(), want.sum().backward());
            let (a, w) = (x.grad(&g_got).expect("gradient"), x.grad(&g_want).expect("gradient"));
            let diff: f32 = (a - w).abs().max().into_scalar();
            assert!(diff < 1e-5, "tanh_approx {tanh_approx}: gradients: max |diff| {diff}");
        }
    }

    /// Against Burn's Linear under autodiff: the outputs, and the gradients of a
    /// weighted sum of them with respect to the input, the weight and the bias.
    #[test]
    fn linear_matches_burns() {
        let device = Device::flex().autodiff();
        let (b, n, d_in, d_out) = (2, 45, 24, 40);
        let l = burn::nn::LinearConfig::new(d_in, d_out).init(&device);
        let x = Tensor::<3>::random([b, n, d_in], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let weights = Tensor::<3>::random([b, n, d_out], Distribution::Normal(0.0, 1.0), &device);
        let got = linear(&l, &x).expect("CPU autodiff tensors and a bias");
        let want = l.forward(x.clone());
        let diff: f32 = (got.clone() - want.clone()).abs().max().into_scalar();
        assert!(diff < 1e-5, "outputs: max |diff| {diff}");
        let g_got = (got * weights.clone()).sum().backward();
        let g_want = (want * weights).sum().backward();
        let (w, bias) = (l.weight.val(), l.bias.as_ref().expect("a bias").val());
        let grads = |g: &burn::tensor::Gradients| {
            let dx = x.grad(g).expect("gradient").reshape([b * n * d_in]);
            let dw = w.grad(g).expect("gradient").reshape([d_in * d_out]);
            [dx, dw, bias.grad(g).expect("gradient")]
        };
        for ((a, w), name) in grads(&g_got).into_iter().zip(grads(&g_want)).zip(["x", "weight", "bias"]) {
            assert_gradient_close(a, w, name);
        }
    }
}
