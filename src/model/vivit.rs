//! ViViT (Arnab et al., 2021), the factorised-embedding "model 1" variant of
//! transformers' `VivitForVideoClassification`: tubelet embedding, CLS token,
//! learned positions, pre-norm blocks with `gelu_fast`, final LayerNorm, CLS classifier.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::config::{Activation, ModelConfig};
use super::layers::{self, Block, Mlp, SelfAttention};
use super::weights::{HostTensor, TensorMap};
use super::{Head, ModelError};

/// The one key-mapping table: checkpoint names of ViViT's parts.
pub mod keys {
    /// Tubelet projection (Conv3d).
    pub const PATCH: &str = "vivit.embeddings.patch_embeddings.projection";
    /// CLS token [1, 1, hidden].
    pub const CLS: &str = "vivit.embeddings.cls_token";
    /// Positions [1, 1 + tokens, hidden].
    pub const POS: &str = "vivit.embeddings.position_embeddings";
    /// Final LayerNorm.
    pub const NORM: &str = "vivit.layernorm";
    /// Classifier.
    pub const CLASSIFIER: &str = "classifier";
    /// A part of layer `i`: `layernorm_before`, `attention.attention.query` / `.key` /
    /// `.value` (with biases), `attention.output.dense`, `layernorm_after`,
    /// `intermediate.dense`, `output.dense`.
    pub fn layer(i: usize, part: &str) -> String {
        format!("vivit.encoder.layer.{i}.{part}")
    }
}

/// ViViT with its classification head.
#[derive(Module, Debug)]
pub struct Vivit {
    /// Tubelet projection as a Linear.
    pub patch: Linear,
    /// CLS token.
    pub cls: Param<Tensor<3>>,
    /// Positions.
    pub pos: Param<Tensor<3>>,
    /// Blocks.
    pub blocks: Vec<Block>,
    /// Final LayerNorm.
    pub norm: layers::Norm,
    /// Classifier.
    pub classifier: Linear,
    /// Frames per tubelet.
    pub tubelet: usize,
    /// Patch size.
    pub patch_size: usize,
}

impl Vivit {
    /// Builds the model from checkpoint tensors.
    pub fn load(cfg: &ModelConfig, w: &mut TensorMap, head: &Head, device: &Device) -> Result<Vivit, ModelError> {
        let (d, m, c, t, p) =
            (cfg.hidden_size, cfg.intermediate_size, cfg.num_channels, cfg.tubelet_size, cfg.patch_size);
        let patch = layers::load_patch_projection(w, keys::PATCH, &[d, c, t, p, p], device)?;
        let cls = layers::load_param(w, keys::CLS, &[1, 1, d], device)?;
        let pos = layers::load_param(w, keys::POS, &[1, 1 + cfg.num_patches(), d], device)?;
        let eps = cfg.layer_norm_eps;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let k = |part: &str| keys::layer(i, part);
            let lin = |w: &mut TensorMap, part: &str, bias: bool| layers::load_linear(w, &k(part), d, d, bias, device);
            blocks.push(Block {
                norm1: layers::load_layer_norm(w, &k("layernorm_before"), d, eps, device)?,
                attn: SelfAttention {
                    q: lin(w, "attention.attention.query", cfg.qkv_bias)?,
                    k: lin(w, "attention.attention.key", cfg.qkv_bias)?,
                    v: lin(w, "attention.attention.value", cfg.qkv_bias)?,
                    o: lin(w, "attention.output.dense", true)?,
                    heads: cfg.num_attention_heads,
                },
                norm2: layers::load_layer_norm(w, &k("layernorm_after"), d, eps, device)?,
                mlp: Mlp {
                    fc1: layers::load_linear(w, &k("intermediate.dense"), d, m, true, device)?,
                    fc2: layers::load_linear(w, &k("output.dense"), m, d, true, device)?,
                    tanh_gelu: cfg.hidden_act == Activation::GeluTanh,
                },
            });
        }
        Ok(Vivit {
            patch,
            cls,
            pos,
            blocks,
            norm: layers::load_layer_norm(w, keys::NORM, d, eps, device)?,
            classifier: super::load_head(w, keys::CLASSIFIER, d, head, device)?,
            tubelet: t,
            patch_size: p,
        })
    }

    /// Token features after the final LayerNorm.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, 1 + tokens, hidden]
    pub fn encode(&self, pixel_values: Tensor<5>) -> Tensor<3> {
        let b = pixel_values.dims()[0];
        let x = layers::dense(&self.patch, layers::tubelets(pixel_values, self.tubelet, self.patch_size));
        let mut x = Tensor::cat(vec![self.cls.val().repeat_dim(0, b), x], 1) + self.pos.val();
        for blk in &self.blocks {
            x = blk.forward(x);
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
        let (d, c, t, p) = (cfg.hidden_size, cfg.num_channels, self.tubelet, self.patch_size);
        super::export_patch(&mut out, keys::PATCH, &self.patch, &[d, c, t, p, p]);
        out.insert(keys::CLS.into(), layers::to_host(self.cls.val()));
        out.insert(keys::POS.into(), layers::to_host(self.pos.val()));
        for (i, b) in self.blocks.iter().enumerate() {
            let k = |part: &str| keys::layer(i, part);
            super::export_ln(&mut out, &k("layernorm_before"), &b.norm1);
            super::export_linear(&mut out, &k("attention.attention.query"), &b.attn.q);
            super::export_linear(&mut out, &k("attention.attention.key"), &b.attn.k);
            super::export_linear(&mut out, &k("attention.attention.value"), &b.attn.v);
            super::export_linear(&mut out, &k("attention.output.dense"), &b.attn.o);
            super::export_ln(&mut out, &k("layernorm_after"), &b.norm2);
            super::export_linear(&mut out, &k("intermediate.dense"), &b.mlp.fc1);
            super::export_linear(&mut out, &k("output.dense"), &b.mlp.fc2);
        }
        super::export_ln(&mut out, keys::NORM, &self.norm);
        super::export_linear(&mut out, keys::CLASSIFIER, &self.classifier);
        out
    }
}
