//! ViViT (Arnab et al., 2021), the factorised-embedding "model 1" variant of
//! transformers' `VivitForVideoClassification`: tubelet embedding, CLS token,
//! learned positions, pre-norm blocks with `gelu_fast`, final LayerNorm, CLS classifier.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::Tensor;

use super::checkpoint::{empty_block, empty_linear, empty_norm, empty_param, walk_block, Qkv, Walk};
use super::config::ModelConfig;
use super::layers::{self, Block};
use super::ModelError;
use crate::backend::ops;

/// Checkpoint names of ViViT's parts (the table [`Vivit::walk`] visits).
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
    /// Encoder layer `i` (its parts: [`super::super::checkpoint::walk_vit_layer`]).
    pub fn layer(i: usize) -> String {
        format!("vivit.encoder.layer.{i}")
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
    /// `hidden_dropout_prob`, of the embeddings (training only).
    pub hidden_dropout: f64,
}

impl Vivit {
    /// The network of `cfg`'s shape, its weights empty until [`super::checkpoint::Load`] walks it.
    pub fn empty(cfg: &ModelConfig) -> Vivit {
        Vivit {
            patch: empty_linear(),
            cls: empty_param(),
            pos: empty_param(),
            blocks: (0..cfg.num_hidden_layers).map(|i| empty_block(cfg, i)).collect(),
            hidden_dropout: cfg.hidden_dropout_prob,
            norm: empty_norm(cfg.layer_norm_eps),
            classifier: empty_linear(),
            tubelet: cfg.tubelet_size,
            patch_size: cfg.patch_size,
        }
    }

    /// The key table: every part with its checkpoint name, for [`super::checkpoint::Load`] and [`super::checkpoint::Export`].
    pub(super) fn walk(&mut self, cfg: &ModelConfig, w: &mut impl Walk) -> Result<(), ModelError> {
        let (d, c, t, p) = (cfg.hidden_size, cfg.num_channels, self.tubelet, self.patch_size);
        w.patch(&mut self.patch, keys::PATCH, &[d, c, t, p, p])?;
        w.param(&mut self.cls, keys::CLS, [1, 1, d])?;
        w.param(&mut self.pos, keys::POS, [1, 1 + cfg.num_patches(), d])?;
        for (i, b) in self.blocks.iter_mut().enumerate() {
            walk_block(w, &keys::layer(i), b, Qkv::Separate { bias: cfg.qkv_bias }, cfg)?;
        }
        w.norm(&mut self.norm, keys::NORM, d)?;
        w.classifier(&mut self.classifier, keys::CLASSIFIER, d)
    }

    /// Token features after the final LayerNorm; `seed`: training's dropouts (see [`layers::Rates`]).
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, 1 + tokens, hidden]
    pub fn encode(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<3> {
        let b = pixel_values.dims()[0];
        let x = ops::linear(&self.patch, layers::tubelets(pixel_values, self.tubelet, self.patch_size));
        let mut x = Tensor::cat(vec![self.cls.val().repeat_dim(0, b), x], 1) + self.pos.val();
        if let Some(s) = layers::site_seed(seed, usize::MAX, 0) {
            x = ops::dropout(x, self.hidden_dropout, s, 1);
        }
        for (i, blk) in self.blocks.iter().enumerate() {
            x = blk.forward(x, layers::site_seed(seed, i, 0));
        }
        self.norm.forward(x)
    }

    /// Logits; `seed`: training's dropouts, `None` in evaluation.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, labels]
    pub fn forward(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<2> {
        let x = self.encode(pixel_values, seed);
        let [b, _, d] = x.dims();
        self.classifier.forward(x.narrow(1, 0, 1).reshape([b, d]))
    }
}
