//! Building blocks shared by the three architectures, and the conversions
//! between checkpoint tensors (PyTorch layout) and Burn parameters.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{activation, Device, Tensor, TensorData};

use super::cpu::{self, Groups};
use super::weights::{HostTensor, TensorMap};
use super::ModelError;

/// A host tensor on a device.
pub fn to_device<const D: usize>(t: HostTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}

/// A device tensor back on the host.
pub fn to_host<const D: usize>(t: Tensor<D>) -> HostTensor {
    let shape = t.dims().to_vec();
    let data = t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    HostTensor::new(shape, data)
}

/// Transposes a 2-D host tensor.
pub fn transpose(t: &HostTensor) -> HostTensor {
    let (r, c) = (t.shape[0], t.shape[1]);
    let mut out = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = t.data[i * c + j];
        }
    }
    HostTensor::new(vec![c, r], out)
}

/// A Linear layer from PyTorch's `weight` [out, in] (+ optional `bias` [out]).
pub fn linear(weight: HostTensor, bias: Option<HostTensor>, device: &Device) -> Linear {
    Linear {
        weight: Param::from_tensor(to_device(transpose(&weight), device)),
        bias: bias.map(|b| Param::from_tensor(to_device(b, device))),
    }
}

/// Reads `<key>.weight` [out, in] and, when `with_bias`, `<key>.bias`.
pub fn load_linear(
    w: &mut TensorMap,
    key: &str,
    d_in: usize,
    d_out: usize,
    with_bias: bool,
    device: &Device,
) -> Result<Linear, ModelError> {
    let weight = w.take(&format!("{key}.weight"), &[d_out, d_in])?;
    let bias = if with_bias { Some(w.take(&format!("{key}.bias"), &[d_out])?) } else { None };
    Ok(linear(weight, bias, device))
}

/// A trainable tensor read from `key`, checking its shape.
pub fn load_param<const D: usize>(
    w: &mut TensorMap,
    key: &str,
    shape: &[usize],
    device: &Device,
) -> Result<Param<Tensor<D>>, ModelError> {
    Ok(Param::from_tensor(to_device(w.take(key, shape)?, device)))
}

/// PyTorch-layout (`[out, in]`) weight and bias of a Linear.
pub fn linear_to_host(l: &Linear) -> (HostTensor, Option<HostTensor>) {
    (transpose(&to_host(l.weight.val())), l.bias.as_ref().map(|b| to_host(b.val())))
}

/// LayerNorm over the last dimension, with its epsilon at hand (Burn's
/// `LayerNorm` keeps it private), so that CPU training can run it as one
/// autodiff operation ([`super::cpu_grad::layer_norm`]) instead of the nine
/// elementwise and reduction ops Burn records for it.
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
        if super::cpu_grad::on_cpu_autodiff(&x.device()) {
            if let Some(y) = super::cpu_grad::layer_norm(&x, &self.gamma.val(), &self.beta.val(), self.eps) {
                return y;
            }
        }
        burn::tensor::module::layer_norm(x, self.gamma.val(), Some(self.beta.val()), self.eps)
    }
}

/// A LayerNorm from `<key>.weight` / `<key>.bias`.
pub fn load_layer_norm(w: &mut TensorMap, key: &str, d: usize, eps: f64, device: &Device) -> Result<Norm, ModelError> {
    Ok(Norm {
        gamma: load_param(w, &format!("{key}.weight"), &[d], device)?,
        beta: load_param(w, &format!("{key}.bias"), &[d], device)?,
        eps,
    })
}

/// LayerNorm weight and bias on the host.
pub fn layer_norm_to_host(ln: &Norm) -> (HostTensor, HostTensor) {
    (to_host(ln.gamma.val()), to_host(ln.beta.val()))
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
        if cpu::applies(&x) {
            // Inference on the CPU backend over long sequences: vidi's own kernel.
            return dense(&self.o, self.context(x, Groups::All));
        }
        let training = super::cpu_grad::attention_applies(&x);
        let (q, k, v) = (dense(&self.q, x.clone()), dense(&self.k, x.clone()), dense(&self.v, x));
        if training {
            // Training on the CPU backend: the same kernel as one autodiff operation.
            if let Some(ctx) = super::cpu_grad::attention(&q, &k, &v, self.heads) {
                return dense(&self.o, ctx);
            }
        }
        dense(&self.o, heads_attention(q, k, v, self.heads))
    }

    /// The heads' outputs before the output projection, by vidi's CPU kernel
    /// over the tokens as `groups` gathers them (inference on the CPU backend only).
    ///
    /// # Shapes
    /// x: [batch, tokens, hidden] -> [batch, tokens, hidden]
    pub fn context(&self, x: Tensor<3>, groups: Groups) -> Tensor<3> {
        let (q, k, v) = (dense(&self.q, x.clone()), dense(&self.k, x.clone()), dense(&self.v, x));
        cpu::attention(q, k, v, self.heads, groups)
    }
}

/// `softmax(q k^T / sqrt(dh)) v` by Burn's attention, each of `heads` column
/// ranges a head. Fused by the backend (tiled on the CPU for long sequences; on
/// 2 cores 1.4x faster than matmul + softmax + matmul for VideoMAE-base).
///
/// # Shapes
/// q, k, v: `[batch, tokens, heads * dh]` -> `[batch, tokens, heads * dh]`
pub fn heads_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, n, d] = q.dims();
    let split = |t: Tensor<3>| t.reshape([b, n, heads, d / heads]).swap_dims(1, 2); // [b, heads, n, dh]
    let ctx = burn::tensor::module::attention(split(q), split(k), split(v), None, None, Default::default());
    ctx.swap_dims(1, 2).reshape([b, n, d])
}

/// A Linear layer's forward pass, by vidi's CPU path for inference over
/// [`cpu::MIN_TOKENS`] rows or more (all batches and tokens together).
pub fn dense(l: &Linear, x: Tensor<3>) -> Tensor<3> {
    if super::cpu_grad::on_cpu_autodiff(&x.device()) {
        // Training on the CPU: one autodiff operation.
        return super::cpu_grad::linear(l, &x).unwrap_or_else(|| l.forward(x));
    }
    cpu_linear(l, &x, None).unwrap_or_else(|_| l.forward(x))
}

/// `residual + l(x)`, except in the first `skip` tokens of each batch, which
/// keep the residual alone. One gemm on vidi's CPU path (see [`dense`]), which
/// takes the residual's buffer over when nothing else holds it.
///
/// # Shapes
/// x: [batch, tokens, d_in], residual: [batch, tokens, d_out] -> [batch, tokens, d_out]
pub fn dense_add(l: &Linear, x: Tensor<3>, residual: Tensor<3>, skip: usize) -> Tensor<3> {
    let back = match cpu_linear(l, &x, Some((residual, skip))) {
        Ok(out) => return out,
        Err(back) => back,
    };
    let Some((residual, skip)) = back else { unreachable!("cpu::linear hands back the residual it was given") };
    let y = dense(l, x);
    if skip == 0 {
        return residual + y;
    }
    let n = y.dims()[1];
    let kept = residual.clone().narrow(1, 0, skip);
    Tensor::cat(vec![kept, residual.narrow(1, skip, n - skip) + y.narrow(1, skip, n - skip)], 1)
}

fn cpu_linear(l: &Linear, x: &Tensor<3>, residual: cpu::Residual) -> Result<Tensor<3>, cpu::Residual> {
    let [b, n, _] = x.dims();
    if b * n >= cpu::MIN_TOKENS && cpu::for_inference(&x.device()) {
        cpu::linear(l, x, residual)
    } else {
        Err(residual)
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
        dense(&self.fc2, self.hidden(x))
    }

    /// `residual + self.forward(x)`, with the add folded into the last product on the CPU.
    pub fn forward_add(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        dense_add(&self.fc2, self.hidden(x), residual, 0)
    }

    /// The activated hidden layer.
    fn hidden(&self, x: Tensor<3>) -> Tensor<3> {
        let h = dense(&self.fc1, x);
        if cpu::applies(&h) {
            return cpu::gelu(h, self.tanh_gelu);
        }
        if super::cpu_grad::on_cpu_autodiff(&h.device()) {
            if let Some(y) = super::cpu_grad::gelu(&h, self.tanh_gelu) {
                return y;
            }
        }
        if self.tanh_gelu {
            activation::gelu_approximate(h)
        } else {
            activation::gelu(h)
        }
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
        if cpu::applies(&x) {
            // Inference on the CPU: the residual adds folded into the output products.
            let h = dense_add(&self.attn.o, self.attn.context(self.norm1.forward(x.clone()), Groups::All), x, 0);
            return self.mlp.forward_add(self.norm2.forward(h.clone()), h);
        }
        let h = x.clone() + self.attn.forward(self.norm1.forward(x));
        h.clone() + self.mlp.forward(self.norm2.forward(h))
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

/// A Conv3d/Conv2d patch projection (`kernel == stride`) as a Linear over
/// flattened tubelets: PyTorch weight [out, c, (t,) p, p] -> [out, c*t*p*p].
pub fn load_patch_projection(
    w: &mut TensorMap,
    key: &str,
    shape: &[usize],
    device: &Device,
) -> Result<Linear, ModelError> {
    let weight = w.take(&format!("{key}.weight"), shape)?;
    let d = shape[0];
    let flat = HostTensor::new(vec![d, weight.numel() / d], weight.data);
    let bias = w.take(&format!("{key}.bias"), &[d])?;
    Ok(linear(flat, Some(bias), device))
}
