//! TimeSformer (Bertasius et al., 2021), divided space-time attention, as
//! transformers' `TimesformerForVideoClassification`: per-frame patch
//! embedding with CLS and learned positions, learned time embeddings, blocks
//! of temporal attention (+ `temporal_dense`) then spatial attention per frame
//! with the frames' CLS outputs averaged, MLP; final LayerNorm, CLS classifier.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::config::{Activation, ModelConfig};
use super::cpu::{self, Groups};
use super::layers::{self, Mlp, SelfAttention};
use super::weights::{HostTensor, TensorMap};
use super::{Head, ModelError};

/// The one key-mapping table: checkpoint names of TimeSformer's parts.
pub mod keys {
    /// Patch projection (Conv2d).
    pub const PATCH: &str = "timesformer.embeddings.patch_embeddings.projection";
    /// CLS token [1, 1, hidden].
    pub const CLS: &str = "timesformer.embeddings.cls_token";
    /// Spatial positions [1, 1 + patches, hidden].
    pub const POS: &str = "timesformer.embeddings.position_embeddings";
    /// Time embeddings [1, frames, hidden].
    pub const TIME: &str = "timesformer.embeddings.time_embeddings";
    /// Final LayerNorm.
    pub const NORM: &str = "timesformer.layernorm";
    /// Classifier.
    pub const CLASSIFIER: &str = "classifier";
    /// A part of layer `i`: `temporal_layernorm`, `temporal_attention.attention.qkv` (fused,
    /// [3*hidden, hidden]), `temporal_attention.output.dense`, `temporal_dense`,
    /// `layernorm_before`, `attention.attention.qkv`, `attention.output.dense`,
    /// `layernorm_after`, `intermediate.dense`, `output.dense`.
    pub fn layer(i: usize, part: &str) -> String {
        format!("timesformer.encoder.layer.{i}.{part}")
    }
}

/// One divided space-time block.
#[derive(Module, Debug)]
pub struct DividedBlock {
    /// `temporal_layernorm`.
    pub temporal_norm: layers::Norm,
    /// `temporal_attention`.
    pub temporal_attn: SelfAttention,
    /// `temporal_dense`.
    pub temporal_dense: Linear,
    /// `layernorm_before`.
    pub norm1: layers::Norm,
    /// Spatial `attention`.
    pub attn: SelfAttention,
    /// `layernorm_after`.
    pub norm2: layers::Norm,
    /// MLP.
    pub mlp: Mlp,
}

impl DividedBlock {
    /// # Shapes
    /// x: [batch, 1 + patches * frames, hidden] (token = patch * frames + frame) -> same
    pub fn forward(&self, x: Tensor<3>, frames: usize) -> Tensor<3> {
        if cpu::for_inference(&x.device()) {
            return self.forward_cpu(x, frames);
        }
        let [b, n, d] = x.dims();
        let patches = (n - 1) / frames;
        let cls = x.clone().narrow(1, 0, 1); // [b, 1, d]
        let tokens = x.narrow(1, 1, n - 1); // [b, patches*frames, d]

        // Temporal attention: each patch attends over its frames.
        let temporal_in = self.temporal_norm.forward(tokens.clone().reshape([b * patches, frames, d]));
        let temporal = layers::dense(&self.temporal_dense, self.temporal_attn.forward(temporal_in));
        let tokens = tokens + temporal.reshape([b, patches * frames, d]);

        // Spatial attention: each frame's patches, with the CLS token, attend to each other.
        let spatial = tokens
            .clone()
            .reshape([b, patches, frames, d])
            .swap_dims(1, 2) // [b, frames, patches, d]
            .reshape([b * frames, patches, d]);
        let cls_per_frame = cls.clone().repeat_dim(1, frames).reshape([b * frames, 1, d]);
        let spatial_in = Tensor::cat(vec![cls_per_frame, spatial], 1);
        let out = self.attn.forward(self.norm1.forward(spatial_in)); // [b*frames, 1+patches, d]
        let cls_out = out.clone().narrow(1, 0, 1).reshape([b, frames, d]).mean_dim(1); // [b, 1, d]
        let res = out
            .narrow(1, 1, patches)
            .reshape([b, frames, patches, d])
            .swap_dims(1, 2) // [b, patches, frames, d]
            .reshape([b, patches * frames, d]);

        let h = Tensor::cat(vec![cls, tokens], 1) + Tensor::cat(vec![cls_out, res], 1);
        h.clone() + self.mlp.forward(self.norm2.forward(h))
    }

    /// [`Self::forward`] for inference on the CPU backend, with the tokens left
    /// in their order: vidi's attention kernel gathers each patch's frames and
    /// each frame's patches itself. The LayerNorms and projections act on each
    /// token alone, and the mean of CLS's per-frame outputs commutes with the
    /// output projection, so nothing is reordered, repeated or concatenated,
    /// and the residual adds are folded into the output products.
    fn forward_cpu(&self, x: Tensor<3>, frames: usize) -> Tensor<3> {
        // CLS (token 0) takes no part in the temporal attention: its residual is kept.
        let ctx = self.temporal_attn.context(self.temporal_norm.forward(x.clone()), Groups::Frames(frames));
        let x = layers::dense_add(&self.temporal_dense, layers::dense(&self.temporal_attn.o, ctx), x, 1);
        let ctx = self.attn.context(self.norm1.forward(x.clone()), Groups::Patches(frames));
        let h = layers::dense_add(&self.attn.o, ctx, x, 0);
        self.mlp.forward_add(self.norm2.forward(h.clone()), h)
    }
}

/// TimeSformer with its classification head.
#[derive(Module, Debug)]
pub struct Timesformer {
    /// Patch projection as a Linear over flattened patches.
    pub patch: Linear,
    /// CLS token [1, 1, hidden].
    pub cls: Param<Tensor<3>>,
    /// Positions [1, 1 + patches, hidden].
    pub pos: Param<Tensor<3>>,
    /// Time embeddings [1, frames, hidden].
    pub time: Param<Tensor<3>>,
    /// Blocks.
    pub blocks: Vec<DividedBlock>,
    /// Final LayerNorm.
    pub norm: layers::Norm,
    /// Classifier.
    pub classifier: Linear,
    /// Patch size.
    pub patch_size: usize,
}

/// Splits a fused `qkv` Linear ([3d, d] weight, [3d] bias) into q, k, v Linears.
fn load_fused_attention(
    w: &mut TensorMap,
    qkv: &str,
    out: &str,
    d: usize,
    heads: usize,
    bias: bool,
    device: &Device,
) -> Result<SelfAttention, ModelError> {
    let weight = w.take(&format!("{qkv}.weight"), &[3 * d, d])?;
    let b = if bias { Some(w.take(&format!("{qkv}.bias"), &[3 * d])?) } else { None };
    let part = |i: usize| {
        let wt = HostTensor::new(vec![d, d], weight.data[i * d * d..(i + 1) * d * d].to_vec());
        let bt = b.as_ref().map(|b| HostTensor::new(vec![d], b.data[i * d..(i + 1) * d].to_vec()));
        layers::linear(wt, bt, device)
    };
    Ok(SelfAttention { q: part(0), k: part(1), v: part(2), o: layers::load_linear(w, out, d, d, true, device)?, heads })
}

fn export_fused(out: &mut std::collections::BTreeMap<String, HostTensor>, qkv: &str, o: &str, a: &SelfAttention) {
    let mut wt = Vec::new();
    let mut bias = Vec::new();
    let d = a.q.weight.val().dims()[0];
    for l in [&a.q, &a.k, &a.v] {
        let (w, b) = layers::linear_to_host(l);
        wt.extend(w.data);
        if let Some(b) = b {
            bias.extend(b.data);
        }
    }
    out.insert(format!("{qkv}.weight"), HostTensor::new(vec![3 * d, d], wt));
    if bias.len() == 3 * d {
        out.insert(format!("{qkv}.bias"), HostTensor::new(vec![3 * d], bias));
    }
    super::export_linear(out, o, &a.o);
}

impl Timesformer {
    /// Builds the model from checkpoint tensors.
    pub fn load(cfg: &ModelConfig, w: &mut TensorMap, head: &Head, device: &Device) -> Result<Timesformer, ModelError> {
        let (d, m, c, p, f) =
            (cfg.hidden_size, cfg.intermediate_size, cfg.num_channels, cfg.patch_size, cfg.num_frames);
        let patches = (cfg.image_size / p).pow(2);
        let patch = layers::load_patch_projection(w, keys::PATCH, &[d, c, p, p], device)?;
        let cls = layers::load_param(w, keys::CLS, &[1, 1, d], device)?;
        let pos = layers::load_param(w, keys::POS, &[1, 1 + patches, d], device)?;
        let time = layers::load_param(w, keys::TIME, &[1, f, d], device)?;
        let eps = cfg.layer_norm_eps;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let k = |part: &str| keys::layer(i, part);
            let heads = cfg.num_attention_heads;
            blocks.push(DividedBlock {
                temporal_norm: layers::load_layer_norm(w, &k("temporal_layernorm"), d, eps, device)?,
                temporal_attn: load_fused_attention(
                    w,
                    &k("temporal_attention.attention.qkv"),
                    &k("temporal_attention.output.dense"),
                    d,
                    heads,
                    cfg.qkv_bias,
                    device,
                )?,
                temporal_dense: layers::load_linear(w, &k("temporal_dense"), d, d, true, device)?,
                norm1: layers::load_layer_norm(w, &k("layernorm_before"), d, eps, device)?,
                attn: load_fused_attention(
                    w,
                    &k("attention.attention.qkv"),
                    &k("attention.output.dense"),
                    d,
                    heads,
                    cfg.qkv_bias,
                    device,
                )?,
                norm2: layers::load_layer_norm(w, &k("layernorm_after"), d, eps, device)?,
                mlp: Mlp {
                    fc1: layers::load_linear(w, &k("intermediate.dense"), d, m, true, device)?,
                    fc2: layers::load_linear(w, &k("output.dense"), m, d, true, device)?,
                    tanh_gelu: cfg.hidden_act == Activation::GeluTanh,
                },
            });
        }
        Ok(Timesformer {
            patch,
            cls,
            pos,
            time,
            blocks,
            norm: layers::load_layer_norm(w, keys::NORM, d, eps, device)?,
            classifier: super::load_head(w, keys::CLASSIFIER, d, head, device)?,
            patch_size: p,
        })
    }

    /// Token features after the final LayerNorm.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, 1 + patches * frames, hidden]
    pub fn encode(&self, pixel_values: Tensor<5>) -> Tensor<3> {
        let [b, f, c, h, w] = pixel_values.dims();
        let x =
            layers::dense(&self.patch, layers::tubelets(pixel_values.reshape([b * f, 1, c, h, w]), 1, self.patch_size));
        let [_, patches, d] = x.dims(); // [b*f, patches, d]
        let pos = self.pos.val();
        let cls = self.cls.val() + pos.clone().narrow(1, 0, 1); // [1, 1, d]
        let x = x + pos.narrow(1, 1, patches);
        // Token order patch * frames + frame, plus a time embedding per frame.
        let x = x.reshape([b, f, patches, d]).swap_dims(1, 2).reshape([b * patches, f, d]) + self.time.val();
        let x = x.reshape([b, patches * f, d]);
        let mut x = Tensor::cat(vec![cls.repeat_dim(0, b), x], 1);
        for blk in &self.blocks {
            x = blk.forward(x, f);
        }
        self.norm.forward(x)
    }

    /// Logits.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, labels]
    pub fn forward(&self, pixel_values: Tensor<5>) -> Tensor<2> {
        let x = self.encode(pixel_values);
        let [b, _, d] = x.dims();
        self.classifier.forward(x.narrow(1, 0, 1).reshape([b, d]))
    }

    /// The weights under their checkpoint names (transformers layout).
    pub fn export(&self, cfg: &ModelConfig) -> std::collections::BTreeMap<String, HostTensor> {
        let mut out = std::collections::BTreeMap::new();
        let (d, c, p) = (cfg.hidden_size, cfg.num_channels, self.patch_size);
        super::export_patch(&mut out, keys::PATCH, &self.patch, &[d, c, p, p]);
        out.insert(keys::CLS.into(), layers::to_host(self.cls.val()));
        out.insert(keys::POS.into(), layers::to_host(self.pos.val()));
        out.insert(keys::TIME.into(), layers::to_host(self.time.val()));
        for (i, b) in self.blocks.iter().enumerate() {
            let k = |part: &str| keys::layer(i, part);
            super::export_ln(&mut out, &k("temporal_layernorm"), &b.temporal_norm);
            export_fused(
                &mut out,
                &k("temporal_attention.attention.qkv"),
                &k("temporal_attention.output.dense"),
                &b.temporal_attn,
            );
            super::export_linear(&mut out, &k("temporal_dense"), &b.temporal_dense);
            super::export_ln(&mut out, &k("layernorm_before"), &b.norm1);
            export_fused(&mut out, &k("attention.attention.qkv"), &k("attention.output.dense"), &b.attn);
            super::export_ln(&mut out, &k("layernorm_after"), &b.norm2);
            super::export_linear(&mut out, &k("intermediate.dense"), &b.mlp.fc1);
            super::export_linear(&mut out, &k("output.dense"), &b.mlp.fc2);
        }
        super::export_ln(&mut out, keys::NORM, &self.norm);
        super::export_linear(&mut out, keys::CLASSIFIER, &self.classifier);
        out
    }
}
