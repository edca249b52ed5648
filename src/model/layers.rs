//! Building blocks shared by the architectures, as plain math over the
//! backend's operations ([`ops`]), which decide where each runs.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::Tensor;

use crate::backend::ops::{self, mix, Activation, AttentionDrop, Groups};

/// The dropout probabilities of a layer, from `config.json` (all 0 in the
/// published checkpoints): applied only when a forward pass is given a seed
/// (training), where transformers applies them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// `hidden_dropout_prob`: after each output projection (and, in
    /// TimeSformer, after the MLP's activation and the embeddings).
    pub hidden: f64,
    /// `attention_probs_dropout_prob`: of the attention probabilities.
    pub attention: f64,
    /// This layer's drop-path (stochastic depth) probability.
    pub path: f64,
}

impl Rates {
    /// The attention's random parts with `seed`.
    pub fn attention(self, seed: u64) -> AttentionDrop {
        AttentionDrop { probs: self.attention, hidden: self.hidden, path: self.path, seed }
    }

    /// Whether anything is dropped.
    pub fn active(self) -> bool {
        self.hidden > 0.0 || self.attention > 0.0 || self.path > 0.0
    }
}

/// A seed for the random parts of one layer: `seed` with `(layer, site)`
/// mixed in; `None` (evaluation) stays `None`.
pub fn site_seed(seed: Option<u64>, layer: usize, site: u64) -> Option<u64> {
    seed.map(|s| mix(mix(s, layer as u64), site))
}

/// LayerNorm over the last dimension, with its epsilon at hand (Burn's
/// `LayerNorm` keeps it private), so that [`ops::layer_norm`] can run it as
/// one autodiff operation in CPU training.
#[derive(Module, Debug)]
pub struct Norm {
    /// Scale (`weight`).
    pub gamma: Param<Tensor<1>>,
    /// Shift (`bias`).
    pub beta: Param<Tensor<1>>,
    /// Added to the variance.
    pub eps: f64,
}

impl Norm {
    /// # Shapes
    /// x: [batch, tokens, hidden] -> same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        ops::layer_norm(x, self.gamma.val(), self.beta.val(), self.eps)
    }
}

/// Multi-head self-attention with separate q/k/v projections (fused
/// checkpoints are split on load) and an output projection.
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// Query projection.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Output projection.
    pub o: Linear,
    /// Number of heads.
    pub heads: usize,
}

impl SelfAttention {
    /// # Shapes
    /// x: [batch, tokens, hidden] -> [batch, tokens, hidden]
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.grouped(x, Groups::All, None, None)
    }

    /// `residual + self.forward(x)`, the add folded into the output projection where it can be;
    /// with `drop`'s dropouts and drop-path in training.
    pub fn forward_add(&self, x: Tensor<3>, residual: Tensor<3>, drop: Option<AttentionDrop>) -> Tensor<3> {
        self.grouped(x, Groups::All, Some(residual), drop)
    }

    /// Each token attending to the tokens of its group (see [`ops::self_attention`]), plus `residual`.
    ///
    /// # Shapes
    /// x, residual: [batch, tokens, hidden] -> [batch, tokens, hidden]
    pub fn grouped(
        &self,
        x: Tensor<3>,
        groups: Groups,
        residual: Option<Tensor<3>>,
        drop: Option<AttentionDrop>,
    ) -> Tensor<3> {
        ops::self_attention_dropped(x, [&self.q, &self.k, &self.v, &self.o], self.heads, groups, residual, drop)
    }
}

/// The two-layer MLP of a transformer block.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `intermediate.dense`.
    pub fc1: Linear,
    /// `output.dense`.
    pub fc2: Linear,
    /// The activation (`hidden_act`).
    #[module(skip)]
    pub act: Activation,
    /// Whether the activated hidden layer has a dropout of its own (TimeSformer's `intermediate`).
    #[module(skip)]
    pub inner_dropout: bool,
}

impl Mlp {
    /// # Shapes
    /// x: [batch, tokens, hidden] -> same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        ops::linear(&self.fc2, self.hidden(x))
    }

    /// `residual + self.forward(x)`, the add folded into the last product where it can be.
    /// In training (`drop` with a seed): dropout after the activation (where the
    /// architecture has one) and after `fc2`, then drop-path of each sample's output.
    pub fn forward_add(&self, x: Tensor<3>, residual: Tensor<3>, drop: Option<(Rates, u64)>) -> Tensor<3> {
        let Some((r, seed)) = drop.filter(|(r, _)| r.hidden > 0.0 || r.path > 0.0) else {
            return ops::linear_add(&self.fc2, self.hidden(x), residual, 0);
        };
        let h = self.hidden(x);
        let h = if self.inner_dropout { ops::dropout(h, r.hidden, mix(seed, 1), 1) } else { h };
        let y = ops::dropout(ops::linear(&self.fc2, h), r.hidden, mix(seed, 2), 1);
        let [_, n, d] = y.dims();
        residual + ops::dropout(y, r.path, mix(seed, 3), n * d)
    }

    /// The activated hidden layer.
    fn hidden(&self, x: Tensor<3>) -> Tensor<3> {
        ops::linear_activation(&self.fc1, x, self.act)
    }
}

/// A pre-norm transformer block: `x + attn(ln1(x))`, then `h + mlp(ln2(h))`.
#[derive(Module, Debug)]
pub struct Block {
    /// `layernorm_before`.
    pub norm1: Norm,
    /// Self-attention.
    pub attn: SelfAttention,
    /// `layernorm_after`.
    pub norm2: Norm,
    /// MLP.
    pub mlp: Mlp,
    /// Dropout probabilities (training only).
    #[module(skip)]
    pub rates: Rates,
}

impl Block {
    /// `seed`: training's dropouts from it ([`Rates`]); `None` in evaluation.
    ///
    /// # Shapes
    /// x: [batch, tokens, hidden] -> same
    pub fn forward(&self, x: Tensor<3>, seed: Option<u64>) -> Tensor<3> {
        let drop = seed.filter(|_| self.rates.active());
        let h = self.attn.forward_add(self.norm1.forward(x.clone()), x, drop.map(|s| self.rates.attention(mix(s, 1))));
        self.mlp.forward_add(self.norm2.forward(h.clone()), h, drop.map(|s| (self.rates, mix(s, 2))))
    }
}

/// Cuts a video into tubelets of `t x p x p` and flattens each in the order
/// of a Conv3d kernel (channel, time, row, column).
///
/// # Shapes
/// pixel_values: [batch, frames, channels, height, width] -> [batch, tokens, channels * t * p * p],
/// tokens ordered time, row, column.
pub fn tubelets(x: Tensor<5>, t: usize, p: usize) -> Tensor<3> {
    let [b, f, c, h, w] = x.dims();
    let (nt, nh, nw) = (f / t, h / p, w / p);
    x.reshape([b * nt, t, c, nh, p, nw, p])
        .permute([0, 3, 5, 2, 1, 4, 6]) // [b*nt, nh, nw, c, t, p, p]
        .reshape([b, nt * nh * nw, c * t * p * p])
}
