//! Attention with bounded memory for every backend other than the CPU's
//! (wgpu): `softmax(q k^T / sqrt(dh)) v` a block of queries at a time, so that
//! no `heads x tokens x tokens` tensor exists, and in training one autodiff
//! operation that saves only the output and each query's log-sum-exp, and
//! rebuilds the probabilities block by block in its backward pass (as vidi's
//! CPU kernels do, and FlashAttention). Built from Burn's tensor operations.
//!
//! A block holds at most [`QUERY_BLOCK`] queries, fewer when the batch's
//! scores for that many would pass [`SCORE_BUDGET`] elements (64 MiB in f32,
//! well inside any adapter's `max_storage_buffer_binding_size`): one block's
//! scores grow with the number of keys, never with its square.
//!
//! For one head, with `P = softmax(scale * Q K^T)`, `O = P V` and the upstream
//! gradient `dO`: `dV = P^T dO`, `dP = dO V^T`, `dS = P * (dP - rowsum(dO * O))`,
//! `dQ = scale * dS K`, `dK = scale * dS^T Q`.

use burn::tensor::Tensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_backend::BackendTypes;
use burn_cubecl::Cube;

/// The most queries in one block.
pub const QUERY_BLOCK: usize = 128;
/// The most score elements (batch x heads x queries x keys) one block may hold.
pub const SCORE_BUDGET: usize = 1 << 24;

/// Queries per block for `rows` (batch x heads) sequences of `n` keys.
pub fn block_len(rows: usize, n: usize) -> usize {
    (SCORE_BUDGET / (rows * n).max(1)).clamp(1, QUERY_BLOCK).min(n.max(1))
}

/// The query blocks of `n` tokens: (start, length).
fn blocks(rows: usize, n: usize) -> impl Iterator<Item = (usize, usize)> {
    let len = block_len(rows, n);
    (0..n).step_by(len).map(move |s| (s, len.min(n - s)))
}

/// `[b, n, heads * dh]` -> `[b, heads, n, dh]`.
fn split(t: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, n, d] = t.dims();
    t.reshape([b, n, heads, d / heads]).swap_dims(1, 2)
}

/// `[b, heads, n, dh]` -> `[b, n, heads * dh]`.
fn merge(t: Tensor<4>) -> Tensor<3> {
    let [b, h, n, dh] = t.dims();
    t.swap_dims(1, 2).reshape([b, n, h * dh])
}

/// The output `[b, h, n, dh]` and the log-sum-exp of each query's scaled
/// scores `[b, h, n, 1]`, a block of queries at a time.
fn forward_split(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, scale: f64) -> (Tensor<4>, Tensor<4>) {
    let [b, h, n, _] = q.dims();
    let kt = k.swap_dims(2, 3);
    let (mut outs, mut lses) = (Vec::new(), Vec::new());
    for (s, len) in blocks(b * h, n) {
        let scores = q.clone().narrow(2, s, len).matmul(kt.clone()).mul_scalar(scale);
        let m = scores.clone().max_dim(3);
        let p = (scores - m.clone()).exp();
        let l = p.clone().sum_dim(3);
        outs.push(p.matmul(v.clone()) / l.clone());
        lses.push(m + l.log());
    }
    (Tensor::cat(outs, 2), Tensor::cat(lses, 2))
}

/// The gradients of q, k and v (split by heads) given the output's `d_out`.
fn backward_split(
    [q, k, v, out, lse]: [Tensor<4>; 5],
    d_out: Tensor<4>,
    scale: f64,
) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
    let [b, h, n, _] = q.dims();
    let delta = (d_out.clone() * out).sum_dim(3);
    let (kt, vt) = (k.clone().swap_dims(2, 3), v.clone().swap_dims(2, 3));
    let (mut dk, mut dv) = (k.zeros_like(), v.zeros_like());
    let mut dqs = Vec::new();
    for (s, len) in blocks(b * h, n) {
        let qb = q.clone().narrow(2, s, len);
        let dob = d_out.clone().narrow(2, s, len);
        let p = (qb.clone().matmul(kt.clone()).mul_scalar(scale) - lse.clone().narrow(2, s, len)).exp();
        dv = dv + p.clone().swap_dims(2, 3).matmul(dob.clone());
        let ds = p * (dob.matmul(vt.clone()) - delta.clone().narrow(2, s, len));
        dqs.push(ds.clone().matmul(k.clone()).mul_scalar(scale));
        dk = dk + ds.swap_dims(2, 3).matmul(qb).mul_scalar(scale);
    }
    (Tensor::cat(dqs, 2), dk, dv)
}

/// The primitive of the wgpu backend's tensors.
type Prim = <Cube as BackendTypes>::FloatTensorPrimitive;
/// The primitive of the wgpu backend's tensors under autodiff.
type AdPrim = <Autodiff<Cube> as BackendTypes>::FloatTensorPrimitive;

/// What the backward pass keeps: q, k, v, the output and the log-sum-exp
/// (split by heads), none of them `tokens x tokens`.
#[derive(Clone, Debug)]
struct Saved {
    tensors: [Prim; 5],
    scale: f64,
}

#[derive(Debug)]
struct BlockedAttention;

fn wrap(p: Prim) -> Tensor<4> {
    Tensor::from_primitive::<Cube>(p)
}

fn primitive<const D: usize>(t: Tensor<D>) -> Prim {
    t.try_into_primitive::<Cube>().unwrap_or_else(|e| unreachable!("made on the wgpu backend: {e:?}"))
}

impl Backward<Cube, 3> for BlockedAttention {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let Saved { tensors, scale } = ops.state;
        let d_out = Tensor::<3>::from_primitive::<Cube>(grads.consume::<Cube>(&ops.node));
        super::ops::pace(&d_out.device());
        let heads = wrap(tensors[0].clone()).dims()[1];
        let (dq, dk, dv) = backward_split(tensors.map(wrap), split(d_out, heads), scale);
        super::ops::pace(&dq.device());
        for (parent, g) in ops.parents.into_iter().zip([dq, dk, dv]) {
            if let Some(node) = parent {
                grads.register::<Cube>(node.id, primitive(merge(g)));
            }
        }
    }
}

/// `softmax(q k^T / sqrt(dh)) v` over `heads` column ranges, a block of
/// queries at a time; under autodiff on the wgpu backend, one operation whose
/// backward pass rebuilds the probabilities block by block. (Under autodiff on
/// another backend, Burn records each block's operations.)
///
/// # Shapes
/// q, k, v: `[batch, tokens, heads * dh]` -> `[batch, tokens, heads * dh]`
pub fn attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    let dh = q.dims()[2] / heads;
    let scale = 1.0 / (dh as f64).sqrt();
    if !q.device().is_autodiff() {
        return merge(forward_split(split(q, heads), split(k, heads), split(v, heads), scale).0);
    }
    let prim = |t: &Tensor<3>| t.clone().try_into_primitive::<Autodiff<Cube>>().ok();
    let (Some(qa), Some(ka), Some(va)) = (prim(&q), prim(&k), prim(&v)) else {
        return merge(forward_split(split(q, heads), split(k, heads), split(v, heads), scale).0);
    };
    let inner = |t: &AdPrim| split(Tensor::from_primitive::<Cube>(t.primitive().clone()), heads);
    let (qs, ks, vs) = (inner(&qa), inner(&ka), inner(&va));
    let (out, lse) = forward_split(qs.clone(), ks.clone(), vs.clone(), scale);
    let result = primitive(merge(out.clone()));
    let result =
        match BlockedAttention.prepare::<NoCheckpointing>([qa.node(), ka.node(), va.node()]).compute_bound().stateful()
        {
            OpsKind::Tracked(prep) => {
                let tensors = [qs, ks, vs, out, lse].map(primitive);
                prep.finish(Saved { tensors, scale }, result)
            }
            OpsKind::UnTracked(prep) => prep.finish(result),
        };
    Tensor::from_primitive::<Autodiff<Cube>>(result)
}

/// A point in the computation where GPU work on a device shared with the
/// window waits for the work queued before it (see [`super::ops::pace`]), in
/// the forward pass and, under autodiff, in the backward pass too. The
/// tensor passes unchanged, and so does its gradient.
#[derive(Debug)]
struct PacePoint;

impl Backward<Cube, 1> for PacePoint {
    type State = ();

    fn backward(self, ops: Ops<(), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<Cube>(&ops.node);
        super::ops::pace(&Tensor::<3>::from_primitive::<Cube>(g.clone()).device());
        if let Some(node) = &ops.parents[0] {
            grads.register::<Cube>(node.id, g);
        }
    }
}

/// `x`, after a pace (see [`PacePoint`]).
pub fn pace_point(x: Tensor<3>) -> Tensor<3> {
    super::ops::pace(&x.device());
    if !x.device().is_autodiff() {
        return x;
    }
    let Ok(xa) = x.clone().try_into_primitive::<Autodiff<Cube>>() else { return x };
    let same = xa.primitive().clone();
    let out = match PacePoint.prepare::<NoCheckpointing>([xa.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((), same),
        OpsKind::UnTracked(prep) => prep.finish(same),
    };
    Tensor::from_primitive::<Autodiff<Cube>>(out)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    /// Block by block gives what Burn's attention gives on the whole
    /// sequence, with several blocks and a last one shorter than the rest.
    #[test]
    fn blocks_of_queries_give_the_whole_attention() {
        let cpu = Device::flex();
        let (b, n, heads, dh) = (2, 2 * super::QUERY_BLOCK + 7, 3, 4);
        assert!(super::blocks(b * heads, n).count() >= 3);
        let r = || Tensor::<3>::random([b, n, heads * dh], Distribution::Normal(0.0, 1.0), &cpu);
        let (q, k, v) = (r(), r(), r());
        let want = crate::backend::ops::heads_attention(q.clone(), k.clone(), v.clone(), heads);
        let got = super::attention(q, k, v, heads);
        let diff: f32 = (got - want).abs().max().into_scalar();
        assert!(diff < 1e-5, "max |diff| {diff}");
    }
}
