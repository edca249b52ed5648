//! Checkpoint tensors (transformers' names and PyTorch layouts) to and from
//! Burn modules, in both directions from one description.
//!
//! Each architecture has one `walk` that visits every part of the network
//! with its checkpoint key: its `keys` table. [`Load`] walks it to fill a
//! network whose shape ([`empty_linear`], [`empty_norm`], [`empty_param`])
//! came from the config; [`Export`] walks the same table to write the weights
//! back under the same names. A key is therefore written once, and load and
//! export cannot disagree.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;

use super::config::{Architecture, ModelConfig};
use super::layers::{Block, Mlp, Norm, SelfAttention};
use super::weights::TensorMap;
use super::{Head, ModelError};
use crate::backend::{to_device, to_host, HostTensor};

/// How the query, key and value projections of an attention under `<prefix>`
/// are stored (transformers' names: `<prefix>.attention.query`, ... and the
/// output projection `<prefix>.output.dense`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qkv {
    /// Three Linears `query`, `key`, `value`, with biases when `bias` (ViViT).
    Separate {
        /// Whether they have biases.
        bias: bool,
    },
    /// VideoMAE's: three weights without biases, and separate `q_bias` and
    /// `v_bias` parameters when `bias` (the key projection has none).
    SplitBiases {
        /// Whether there are q and v biases.
        bias: bool,
    },
    /// TimeSformer's: one fused Linear `qkv` (`[3 * hidden, hidden]`), split on load.
    Fused {
        /// Whether it has a bias.
        bias: bool,
    },
}

/// One direction of the key table: loading into a network or exporting from it.
pub trait Walk {
    /// A Linear stored as PyTorch's `<key>.weight` `[d_out, d_in]` (+ `<key>.bias`).
    fn linear(&mut self, l: &mut Linear, key: &str, d_in: usize, d_out: usize, bias: bool) -> Result<(), ModelError>;
    /// A LayerNorm `<key>.weight` / `<key>.bias` of width `d` (its epsilon comes from the config).
    fn norm(&mut self, n: &mut Norm, key: &str, d: usize) -> Result<(), ModelError>;
    /// A learned tensor stored as it is.
    fn param<const D: usize>(
        &mut self,
        p: &mut Param<Tensor<D>>,
        key: &str,
        shape: [usize; D],
    ) -> Result<(), ModelError>;
    /// A Conv3d/Conv2d patch projection (`kernel == stride`, weight `shape`), kept as a
    /// Linear over flattened tubelets.
    fn patch(&mut self, l: &mut Linear, key: &str, shape: &[usize]) -> Result<(), ModelError>;
    /// The attention under `prefix`: q, k, v stored as `qkv` says, and the output projection; width `d`.
    fn attention(&mut self, a: &mut SelfAttention, prefix: &str, qkv: Qkv, d: usize) -> Result<(), ModelError>;
    /// The classifier (`hidden -> labels`).
    fn classifier(&mut self, l: &mut Linear, key: &str, d: usize) -> Result<(), ModelError>;
}

/// A Linear of no size (in host memory), for a network's shape before [`Load`] fills it.
pub fn empty_linear() -> Linear {
    Linear { weight: empty_param(), bias: None }
}

/// A LayerNorm of no size with its epsilon.
pub fn empty_norm(eps: f64) -> Norm {
    Norm { gamma: empty_param(), beta: empty_param(), eps }
}

/// A learned tensor of no size (in host memory).
pub fn empty_param<const D: usize>() -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::empty([0; D], &crate::backend::host_device()))
}

/// An attention of no size with its head count.
pub fn empty_attention(heads: usize) -> SelfAttention {
    SelfAttention { q: empty_linear(), k: empty_linear(), v: empty_linear(), o: empty_linear(), heads }
}

/// Pre-norm block `layer` of `cfg`'s shape, empty.
pub fn empty_block(cfg: &ModelConfig, layer: usize) -> Block {
    Block {
        norm1: empty_norm(cfg.layer_norm_eps),
        attn: empty_attention(cfg.num_attention_heads),
        norm2: empty_norm(cfg.layer_norm_eps),
        mlp: empty_mlp(cfg),
        rates: cfg.rates(layer),
    }
}

/// An MLP of `cfg`'s activation, empty. TimeSformer's alone drops out its
/// activated hidden layer too (its `intermediate` has a dropout).
pub fn empty_mlp(cfg: &ModelConfig) -> Mlp {
    Mlp {
        fc1: empty_linear(),
        fc2: empty_linear(),
        act: cfg.hidden_act,
        inner_dropout: cfg.arch == Architecture::Timesformer,
    }
}

/// The parts transformers' ViT-style encoder layers share, under `layer`:
/// `layernorm_before`, the `attention`, `layernorm_after`, and the MLP's
/// `intermediate.dense` and `output.dense`.
pub fn walk_vit_layer(
    w: &mut impl Walk,
    layer: &str,
    [norm1, norm2]: [&mut Norm; 2],
    attn: &mut SelfAttention,
    mlp: &mut Mlp,
    qkv: Qkv,
    cfg: &ModelConfig,
) -> Result<(), ModelError> {
    let (d, m) = (cfg.hidden_size, cfg.intermediate_size);
    w.norm(norm1, &format!("{layer}.layernorm_before"), d)?;
    w.attention(attn, &format!("{layer}.attention"), qkv, d)?;
    w.norm(norm2, &format!("{layer}.layernorm_after"), d)?;
    w.linear(&mut mlp.fc1, &format!("{layer}.intermediate.dense"), d, m, true)?;
    w.linear(&mut mlp.fc2, &format!("{layer}.output.dense"), m, d, true)
}

/// [`walk_vit_layer`] for a [`Block`].
pub fn walk_block(
    w: &mut impl Walk,
    layer: &str,
    b: &mut Block,
    qkv: Qkv,
    cfg: &ModelConfig,
) -> Result<(), ModelError> {
    walk_vit_layer(w, layer, [&mut b.norm1, &mut b.norm2], &mut b.attn, &mut b.mlp, qkv, cfg)
}

/// Fills a network from checkpoint tensors, checking every shape against the config.
pub struct Load<'a> {
    /// The checkpoint.
    pub weights: &'a mut TensorMap,
    /// Keep the checkpoint's classifier or start a new one.
    pub head: &'a Head,
    /// Where the network computes.
    pub device: &'a Device,
}

impl Load<'_> {
    fn take_linear(&mut self, key: &str, d_in: usize, d_out: usize, bias: bool) -> Result<Linear, ModelError> {
        let weight = self.weights.take(&format!("{key}.weight"), &[d_out, d_in])?;
        let bias = if bias { Some(self.weights.take(&format!("{key}.bias"), &[d_out])?) } else { None };
        Ok(linear(weight, bias, self.device))
    }
}

impl Walk for Load<'_> {
    fn linear(&mut self, l: &mut Linear, key: &str, d_in: usize, d_out: usize, bias: bool) -> Result<(), ModelError> {
        *l = self.take_linear(key, d_in, d_out, bias)?;
        Ok(())
    }

    fn norm(&mut self, n: &mut Norm, key: &str, d: usize) -> Result<(), ModelError> {
        self.param(&mut n.gamma, &format!("{key}.weight"), [d])?;
        self.param(&mut n.beta, &format!("{key}.bias"), [d])
    }

    fn param<const D: usize>(
        &mut self,
        p: &mut Param<Tensor<D>>,
        key: &str,
        shape: [usize; D],
    ) -> Result<(), ModelError> {
        *p = Param::from_tensor(to_device(self.weights.take(key, &shape)?, self.device));
        Ok(())
    }

    fn patch(&mut self, l: &mut Linear, key: &str, shape: &[usize]) -> Result<(), ModelError> {
        let weight = self.weights.take(&format!("{key}.weight"), shape)?;
        let d = shape[0];
        let flat = HostTensor::new(vec![d, weight.numel() / d], weight.data);
        let bias = self.weights.take(&format!("{key}.bias"), &[d])?;
        *l = linear(flat, Some(bias), self.device);
        Ok(())
    }

    fn attention(&mut self, a: &mut SelfAttention, prefix: &str, qkv: Qkv, d: usize) -> Result<(), ModelError> {
        let key = |part: &str| format!("{prefix}.attention.{part}");
        match qkv {
            Qkv::Separate { bias } => {
                a.q = self.take_linear(&key("query"), d, d, bias)?;
                a.k = self.take_linear(&key("key"), d, d, bias)?;
                a.v = self.take_linear(&key("value"), d, d, bias)?;
            }
            Qkv::SplitBiases { bias } => {
                let mut take = |part: &str, shape: &[usize]| self.weights.take(&key(part), shape);
                let (q_bias, v_bias) =
                    if bias { (Some(take("q_bias", &[d])?), Some(take("v_bias", &[d])?)) } else { (None, None) };
                let (qw, kw, vw) =
                    (take("query.weight", &[d, d])?, take("key.weight", &[d, d])?, take("value.weight", &[d, d])?);
                a.q = linear(qw, q_bias, self.device);
                a.k = linear(kw, None, self.device);
                a.v = linear(vw, v_bias, self.device);
            }
            Qkv::Fused { bias } => {
                let weight = self.weights.take(&key("qkv.weight"), &[3 * d, d])?;
                let b = if bias { Some(self.weights.take(&key("qkv.bias"), &[3 * d])?) } else { None };
                let part = |i: usize| {
                    let wt = HostTensor::new(vec![d, d], weight.data[i * d * d..(i + 1) * d * d].to_vec());
                    let bt = b.as_ref().map(|b| HostTensor::new(vec![d], b.data[i * d..(i + 1) * d].to_vec()));
                    linear(wt, bt, self.device)
                };
                (a.q, a.k, a.v) = (part(0), part(1), part(2));
            }
        }
        a.o = self.take_linear(&format!("{prefix}.output.dense"), d, d, true)?;
        Ok(())
    }

    fn classifier(&mut self, l: &mut Linear, key: &str, d: usize) -> Result<(), ModelError> {
        *l = match self.head {
            Head::Checkpoint { labels } => self.take_linear(key, d, *labels, true)?,
            Head::New { labels, seed, std } => {
                // normal(0, initializer_range) weights, zero bias: transformers' initialisation.
                let n = labels.len();
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(*seed);
                let normal = rand_distr_normal(&mut rng, n * d, *std);
                linear(HostTensor::new(vec![n, d], normal), Some(HostTensor::new(vec![n], vec![0.0; n])), self.device)
            }
        };
        Ok(())
    }
}

/// Writes a network's weights under their checkpoint names, in PyTorch's layouts.
#[derive(Default)]
pub struct Export {
    /// The tensors by name.
    pub tensors: BTreeMap<String, HostTensor>,
}

impl Export {
    fn put_linear(&mut self, key: &str, l: &Linear) {
        let (w, b) = linear_to_host(l);
        self.tensors.insert(format!("{key}.weight"), w);
        if let Some(b) = b {
            self.tensors.insert(format!("{key}.bias"), b);
        }
    }
}

impl Walk for Export {
    fn linear(&mut self, l: &mut Linear, key: &str, _: usize, _: usize, _: bool) -> Result<(), ModelError> {
        self.put_linear(key, l);
        Ok(())
    }

    fn norm(&mut self, n: &mut Norm, key: &str, d: usize) -> Result<(), ModelError> {
        self.param(&mut n.gamma, &format!("{key}.weight"), [d])?;
        self.param(&mut n.beta, &format!("{key}.bias"), [d])
    }

    fn param<const D: usize>(&mut self, p: &mut Param<Tensor<D>>, key: &str, _: [usize; D]) -> Result<(), ModelError> {
        self.tensors.insert(key.into(), to_host(p.val()));
        Ok(())
    }

    fn patch(&mut self, l: &mut Linear, key: &str, shape: &[usize]) -> Result<(), ModelError> {
        // The Linear's PyTorch-layout weight [out, c*t*p*p] is the Conv kernel flattened.
        self.put_linear(key, l);
        if let Some(w) = self.tensors.get_mut(&format!("{key}.weight")) {
            w.shape = shape.to_vec();
        }
        Ok(())
    }

    fn attention(&mut self, a: &mut SelfAttention, prefix: &str, qkv: Qkv, d: usize) -> Result<(), ModelError> {
        let key = |part: &str| format!("{prefix}.attention.{part}");
        match qkv {
            Qkv::Separate { .. } => {
                for (part, l) in [("query", &a.q), ("key", &a.k), ("value", &a.v)] {
                    self.put_linear(&key(part), l);
                }
            }
            Qkv::SplitBiases { .. } => {
                for (part, l, bias_key) in
                    [("query", &a.q, Some("q_bias")), ("key", &a.k, None), ("value", &a.v, Some("v_bias"))]
                {
                    let (wt, bias) = linear_to_host(l);
                    self.tensors.insert(key(&format!("{part}.weight")), wt);
                    if let (Some(bk), Some(bias)) = (bias_key, bias) {
                        self.tensors.insert(key(bk), bias);
                    }
                }
            }
            Qkv::Fused { .. } => {
                let (mut wt, mut bias) = (Vec::new(), Vec::new());
                for l in [&a.q, &a.k, &a.v] {
                    let (w, b) = linear_to_host(l);
                    wt.extend(w.data);
                    bias.extend(b.map(|b| b.data).unwrap_or_default());
                }
                self.tensors.insert(key("qkv.weight"), HostTensor::new(vec![3 * d, d], wt));
                if bias.len() == 3 * d {
                    self.tensors.insert(key("qkv.bias"), HostTensor::new(vec![3 * d], bias));
                }
            }
        }
        self.put_linear(&format!("{prefix}.output.dense"), &a.o);
        Ok(())
    }

    fn classifier(&mut self, l: &mut Linear, key: &str, _: usize) -> Result<(), ModelError> {
        self.put_linear(key, l);
        Ok(())
    }
}

/// Transposes a 2-D host tensor.
fn transpose(t: &HostTensor) -> HostTensor {
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
fn linear(weight: HostTensor, bias: Option<HostTensor>, device: &Device) -> Linear {
    Linear {
        weight: Param::from_tensor(to_device(transpose(&weight), device)),
        bias: bias.map(|b| Param::from_tensor(to_device(b, device))),
    }
}

/// PyTorch-layout (`[out, in]`) weight and bias of a Linear.
fn linear_to_host(l: &Linear) -> (HostTensor, Option<HostTensor>) {
    (transpose(&to_host(l.weight.val())), l.bias.as_ref().map(|b| to_host(b.val())))
}

/// `count` samples of normal(0, std) by Box-Muller (deterministic for a seeded RNG).
pub(crate) fn rand_distr_normal(rng: &mut impl rand::Rng, count: usize, std: f32) -> Vec<f32> {
    (0..count)
        .map(|_| {
            let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let u2: f64 = rng.random();
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32 * std
        })
        .collect()
}
