//! Attention for training on the CPU backend: one autodiff operation whose
//! forward pass is [`super::cpu`]'s blocked kernel and whose backward pass
//! recomputes the probabilities block by block from the saved log-sum-exp
//! (as FlashAttention does), instead of Burn's generic attention, which
//! records a matmul, the softmax's elementwise steps and another matmul, and
//! keeps each `heads x tokens x tokens` intermediate (118 MB per layer and clip
//! for VideoMAE-base) alive until the backward pass.
//!
//! For one head, with `P = softmax(scale * Q K^T)`, `O = P V` and the upstream
//! gradient `dO`: `dV = P^T dO`, `dP = dO V^T`, `dS = P * (dP - rowsum(dO * O))`,
//! `dQ = scale * dS K`, `dK = scale * dS^T Q`.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use super::cpu::{
    attention_host, exp_nonpositive, gather_head, matmul, query_block, simd_dispatch, Groups, SharedMut, MIN_TOKENS,
};

/// The autodiff backend the CPU trains on.
type Ad = Autodiff<Flex>;

/// Whether `x` may take this operation: the CPU backend under autodiff
/// (without gradient checkpointing), a sequence long enough.
pub fn applies(x: &Tensor<3>) -> bool {
    x.dims()[1] >= MIN_TOKENS && x.device() == Device::flex().autodiff()
}

/// What the backward pass needs, on the host.
#[derive(Clone, Debug)]
struct Saved {
    q: Arc<Vec<f32>>,
    k: Arc<Vec<f32>>,
    v: Arc<Vec<f32>>,
    out: Arc<Vec<f32>>,
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

/// A Flex tensor's values, row-major.
fn host(t: FlexTensor) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()
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
    let values = |t: &FlexTensor| Arc::new(host(t.clone()));
    let (qh, kh, vh) = (values(q.primitive()), values(k.primitive()), values(v.primitive()));
    let [b, n, _] = dims;
    let mut lse = vec![0f32; b * heads * n];
    let out = attention_host(&qh, &kh, &vh, dims, heads, Groups::All, Some(&mut lse));
    let tensor = |out: Vec<f32>| FlexTensor::from_data(TensorData::new(out, dims));
    let result =
        match FusedAttention.prepare::<NoCheckpointing>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out_t = tensor(out.clone());
                let saved = Saved { q: qh, k: kh, v: vh, out: Arc::new(out), lse: Arc::new(lse), dims, heads };
                prep.finish(saved, out_t)
            }
            OpsKind::UnTracked(prep) => prep.finish(tensor(out)),
        };
    Some(Tensor::from_primitive::<Ad>(result))
}

/// The gradients with respect to q, k and v (each `[batch, tokens, d]`).
fn attention_backward(s: &Saved, d_out: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [b, n, d] = s.dims;
    let heads = s.heads;
    let dh = d / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let qb = query_block(n);
    let (mut dq, mut dk, mut dv) = (vec![0f32; b * n * d], vec![0f32; b * n * d], vec![0f32; b * n * d]);
    let (dq_p, dk_p, dv_p) = (SharedMut(dq.as_mut_ptr()), SharedMut(dk.as_mut_ptr()), SharedMut(dv.as_mut_ptr()));
    (0..b * heads).into_par_iter().for_each_init(
        || {
            let head = || vec![0f32; n * dh];
            (vec![0f32; qb * n], vec![0f32; qb * n], [head(), head(), head(), head(), head()], vec![0f32; n])
        },
        |(p, ds, [kt, k_rows, vt, dk_h, dv_h], row_dot), task| {
            let (bi, h) = (task / heads, task % heads);
            let base = bi * n * d + h * dh;
            gather_head(&s.k, base, d, n, dh, Some(k_rows), Some(kt));
            gather_head(&s.v, base, d, n, dh, None, Some(vt));
            dk_h.fill(0.0);
            dv_h.fill(0.0);
            // rowsum(dO * O) per query.
            for (i, dot) in row_dot.iter_mut().enumerate() {
                let r = base + i * d;
                *dot = d_out[r..r + dh].iter().zip(&s.out[r..r + dh]).map(|(a, b)| a * b).sum();
            }
            let lse = &s.lse[task * n..(task + 1) * n];
            for q0 in (0..n).step_by(qb) {
                let rows = qb.min(n - q0);
                let (p, ds) = (&mut p[..rows * n], &mut ds[..rows * n]);
                let (q_blk, do_blk) = (s.q[base + q0 * d..].as_ptr(), d_out[base + q0 * d..].as_ptr());
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
                for j in 0..n {
                    // SAFETY: row j of this head's columns, written by this task alone.
                    unsafe {
                        std::ptr::copy_nonoverlapping(src.as_ptr().add(j * dh), dst.get().add(base + j * d), dh);
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Against Burn's own attention under autodiff: the outputs, and the gradients
    /// of a weighted sum of them with respect to q, k and v.
    #[test]
    fn gradients_match_burns_attention() {
        let device = Device::flex().autodiff();
        let (b, n, heads, dh) = (2, 200, 3, 16);
        let d = heads * dh;
        let input = |s: f64| Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, s), &device).require_grad();
        let (q, k, v) = (input(1.0), input(1.0), input(1.0));
        let weights = Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &device);
        assert!(applies(&q));
        let got = attention(&q, &k, &v, heads).expect("CPU autodiff tensors");
        let want = super::super::layers::heads_attention(q.clone(), k.clone(), v.clone(), heads);
        let diff: f32 = (got.clone() - want.clone()).abs().max().into_scalar();
        assert!(diff < 5e-5, "outputs: max |diff| {diff}");
        let g_got = (got * weights.clone()).sum().backward();
        let g_want = (want * weights).sum().backward();
        for (name, t) in [("q", &q), ("k", &k), ("v", &v)] {
            let (a, w) = (t.grad(&g_got).expect("gradient"), t.grad(&g_want).expect("gradient"));
            let scale: f32 = w.clone().abs().max().into_scalar();
            let diff: f32 = (a - w).abs().max().into_scalar();
            assert!(scale > 1e-2 && diff < 1e-4 * scale.max(1.0), "d{name}: max |diff| {diff} (largest {scale})");
        }
    }
}
