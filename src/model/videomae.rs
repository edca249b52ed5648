//! VideoMAE (Tong et al., 2022) for video classification, as transformers'
//! `VideoMAEForVideoClassification`: tubelet embedding + fixed sinusoidal
//! positions, pre-norm ViT blocks with q/v biases, mean pooling + `fc_norm`
//! (or final `layernorm` + token 0), linear classifier.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::config::{Activation, ModelConfig};
use super::layers::{self, Block, Mlp, SelfAttention};
use super::weights::{HostTensor, TensorMap};
use super::{Head, ModelError};

/// The one key-mapping table: checkpoint names of VideoMAE's parts.
pub mod keys {
    /// Tubelet projection (Conv3d).
    pub const PATCH: &str = "videomae.embeddings.patch_embeddings.projection";
    /// Final LayerNorm (`use_mean_pooling = false`).
    pub const NORM: &str = "videomae.layernorm";
    /// LayerNorm after mean pooling (`use_mean_pooling = true`).
    pub const FC_NORM: &str = "fc_norm";
    /// Classifier.
    pub const CLASSIFIER: &str = "classifier";
    /// A part of encoder layer `i`: `layernorm_before`, `attention.attention.query` (weight,
    /// no bias), `.key`, `.value`, `attention.attention.q_bias` / `v_bias` (separate
    /// parameters; the key has no bias), `attention.output.dense`, `layernorm_after`,
    /// `intermediate.dense`, `output.dense`.
    pub fn layer(i: usize, part: &str) -> String {
        format!("videomae.encoder.layer.{i}.{part}")
    }
    /// Keys of pre-training checkpoints that classification ignores.
    pub const PRETRAINING_ONLY: [&str; 3] = ["decoder.", "encoder_to_decoder", "mask_token"];
}

/// VideoMAE with its classification head.
#[derive(Module, Debug)]
pub struct VideoMae {
    /// Tubelet projection as a Linear over flattened tubelets.
    pub patch: Linear,
    /// Encoder blocks.
    pub blocks: Vec<Block>,
    /// `fc_norm` (mean pooling) or `layernorm` (token 0).
    pub head_norm: layers::Norm,
    /// Classifier.
    pub classifier: Linear,
    /// Fixed sinusoidal position table [1, tokens, hidden] (not trained).
    pub pos: Tensor<3>,
    /// Mean-pool tokens (true) or take token 0 (false).
    pub mean_pooling: bool,
    /// Frames per tubelet.
    pub tubelet: usize,
    /// Patch size.
    pub patch_size: usize,
}

/// VideoMAE's fixed position table: angle `pos / 10000^(2*(j//2)/d)`, sin on
/// even dims, cos on odd, computed in f64 as transformers does.
pub fn sinusoid_table(n: usize, d: usize) -> HostTensor {
    let mut data = Vec::with_capacity(n * d);
    for pos in 0..n {
        for j in 0..d {
            let angle = pos as f64 / 10000f64.powf(2.0 * (j / 2) as f64 / d as f64);
            data.push(if j % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    HostTensor::new(vec![1, n, d], data)
}

impl VideoMae {
    /// Builds the model from checkpoint tensors.
    pub fn load(cfg: &ModelConfig, w: &mut TensorMap, head: &Head, device: &Device) -> Result<VideoMae, ModelError> {
        let (d, m, c) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_channels);
        let (t, p) = (cfg.tubelet_size, cfg.patch_size);
        let patch = layers::load_patch_projection(w, keys::PATCH, &[d, c, t, p, p], device)?;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let k = |part: &str| keys::layer(i, part);
            let bias = |name: &str, w: &mut TensorMap| -> Result<Option<HostTensor>, ModelError> {
                if cfg.qkv_bias {
                    w.take(&k(name), &[d]).map(Some)
                } else {
                    Ok(None)
                }
            };
            let q_bias = bias("attention.attention.q_bias", w)?;
            let v_bias = bias("attention.attention.v_bias", w)?;
            let lin = |w: &mut TensorMap, name: &str, b: Option<HostTensor>| -> Result<Linear, ModelError> {
                Ok(layers::linear(w.take(&format!("{}.weight", k(name)), &[d, d])?, b, device))
            };
            let attn = SelfAttention {
                q: lin(w, "attention.attention.query", q_bias)?,
                k: lin(w, "attention.attention.key", None)?,
                v: lin(w, "attention.attention.value", v_bias)?,
                o: layers::load_linear(w, &k("attention.output.dense"), d, d, true, device)?,
                heads: cfg.num_attention_heads,
            };
            blocks.push(Block {
                norm1: layers::load_layer_norm(w, &k("layernorm_before"), d, cfg.layer_norm_eps, device)?,
                attn,
                norm2: layers::load_layer_norm(w, &k("layernorm_after"), d, cfg.layer_norm_eps, device)?,
                mlp: Mlp {
                    fc1: layers::load_linear(w, &k("intermediate.dense"), d, m, true, device)?,
                    fc2: layers::load_linear(w, &k("output.dense"), m, d, true, device)?,
                    tanh_gelu: cfg.hidden_act == Activation::GeluTanh,
                },
            });
        }
        let head_norm = if cfg.use_mean_pooling {
            // transformers builds fc_norm with PyTorch's default eps.
            layers::load_layer_norm(w, keys::FC_NORM, d, 1e-5, device)?
        } else {
            layers::load_layer_norm(w, keys::NORM, d, cfg.layer_norm_eps, device)?
        };
        let classifier = super::load_head(w, keys::CLASSIFIER, d, head, device)?;
        Ok(VideoMae {
            patch,
            blocks,
            head_norm,
            classifier,
            pos: layers::to_device(sinusoid_table(cfg.num_patches(), d), device),
            mean_pooling: cfg.use_mean_pooling,
            tubelet: t,
            patch_size: p,
        })
    }

    /// Token features after the encoder.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, tokens, hidden]
    pub fn encode(&self, pixel_values: Tensor<5>) -> Tensor<3> {
        let x = layers::dense(&self.patch, layers::tubelets(pixel_values, self.tubelet, self.patch_size));
        let mut x = x + self.pos.clone();
        for b in &self.blocks {
            x = b.forward(x);
        }
        x
    }

    /// Logits.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, labels]
    pub fn forward(&self, pixel_values: Tensor<5>) -> Tensor<2> {
        let x = self.encode(pixel_values);
        let [b, _, d] = x.dims();
        let pooled = if self.mean_pooling {
            self.head_norm.forward(x.mean_dim(1)).reshape([b, d])
        } else {
            self.head_norm.forward(x).narrow(1, 0, 1).reshape([b, d])
        };
        self.classifier.forward(pooled)
    }

    /// The weights under their checkpoint names (transformers layout).
    pub fn export(&self, cfg: &ModelConfig) -> std::collections::BTreeMap<String, HostTensor> {
        let mut out = std::collections::BTreeMap::new();
        let (d, c, t, p) = (cfg.hidden_size, cfg.num_channels, self.tubelet, self.patch_size);
        super::export_patch(&mut out, keys::PATCH, &self.patch, &[d, c, t, p, p]);
        for (i, b) in self.blocks.iter().enumerate() {
            let k = |part: &str| keys::layer(i, part);
            super::export_ln(&mut out, &k("layernorm_before"), &b.norm1);
            super::export_ln(&mut out, &k("layernorm_after"), &b.norm2);
            for (name, lin, bias_key) in [
                ("attention.attention.query", &b.attn.q, Some("attention.attention.q_bias")),
                ("attention.attention.key", &b.attn.k, None),
                ("attention.attention.value", &b.attn.v, Some("attention.attention.v_bias")),
            ] {
                let (wt, bias) = layers::linear_to_host(lin);
                out.insert(format!("{}.weight", k(name)), wt);
                if let (Some(bk), Some(bias)) = (bias_key, bias) {
                    out.insert(k(bk), bias);
                }
            }
            super::export_linear(&mut out, &k("attention.output.dense"), &b.attn.o);
            super::export_linear(&mut out, &k("intermediate.dense"), &b.mlp.fc1);
            super::export_linear(&mut out, &k("output.dense"), &b.mlp.fc2);
        }
        super::export_ln(&mut out, if self.mean_pooling { keys::FC_NORM } else { keys::NORM }, &self.head_norm);
        super::export_linear(&mut out, keys::CLASSIFIER, &self.classifier);
        out
    }
}
