//! Building blocks shared by the architectures, as plain math over the
//! backend's operations ([`ops`]), which decide where each runs.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::Tensor;

use crate::backend::ops::{self, Groups};

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
        self.grouped(x, Groups::All, None)
    }

    /// `residual + self.forward(x)`, the add folded into the output projection where it can be.
    pub fn forward_add(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        self.grouped(x, Groups::All, Some(residual))
    }

    /// Each token attending to the tokens of its group (see [`ops::self_attention`]), plus `residual`.
    ///
    /// # Shapes
    /// x, residual: [batch, tokens, hidden] -> [batch, tokens, hidden]
    pub fn grouped(&self, x: Tensor<3>, groups: Groups, residual: Option<Tensor<3>>) -> Tensor<3> {
        ops::self_attention(x, [&self.q, &self.k, &self.v, &self.o], self.heads, groups, residual)
    }
}

/// The two-layer MLP of a transformer block.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `intermediate.dense`.
    pub fc1: Linear,
    /// `output.dense`.
    pub fc2: Linear,
    /// Tanh-approximated GELU (`gelu_fast`) instead of the exact one.
    pub tanh_gelu: bool,
}

impl Mlp {
    /// # Shapes
    /// x: [batch, tokens, hidden] -> same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        ops::linear(&self.fc2, self.hidden(x))
    }

    /// `residual + self.forward(x)`, the add folded into the last product where it can be.
    pub fn forward_add(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        ops::linear_add(&self.fc2, self.hidden(x), residual, 0)
    }

    /// The activated hidden layer.
    fn hidden(&self, x: Tensor<3>) -> Tensor<3> {
        ops::gelu(ops::linear(&self.fc1, x), self.tanh_gelu)
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
}

impl Block {
    /// # Shapes
    /// x: [batch, tokens, hidden] -> same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.attn.forward_add(self.norm1.forward(x.clone()), x);
        self.mlp.forward_add(self.norm2.forward(h.clone()), h)
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
