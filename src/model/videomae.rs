//! VideoMAE (Tong et al., 2022) for video classification, as transformers'
//! `VideoMAEForVideoClassification`: tubelet embedding + fixed sinusoidal
//! positions, pre-norm ViT blocks with q/v biases, mean pooling + `fc_norm`
//! (or final `layernorm` + token 0), linear classifier.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::checkpoint::{empty_block, empty_linear, empty_norm, walk_block, Qkv, Walk};
use super::config::ModelConfig;
use super::layers::{self, Block};
use super::ModelError;
use crate::backend::{ops, to_device, HostTensor};

/// Checkpoint names of VideoMAE's parts (the table [`VideoMae::walk`] visits).
pub mod keys {
    /// Tubelet projection (Conv3d).
    pub const PATCH: &str = "videomae.embeddings.patch_embeddings.projection";
    /// Final LayerNorm (`use_mean_pooling = false`).
    pub const NORM: &str = "videomae.layernorm";
    /// LayerNorm after mean pooling (`use_mean_pooling = true`).
    pub const FC_NORM: &str = "fc_norm";
    /// Classifier.
    pub const CLASSIFIER: &str = "classifier";
    /// Encoder layer `i` (its parts: [`super::super::checkpoint::walk_vit_layer`]).
    pub fn layer(i: usize) -> String {
        format!("videomae.encoder.layer.{i}")
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
    /// The network of `cfg`'s shape, its weights empty until [`super::checkpoint::Load`] walks it.
    pub fn empty(cfg: &ModelConfig, device: &Device) -> VideoMae {
        let eps = cfg.layer_norm_eps;
        VideoMae {
            patch: empty_linear(),
            blocks: (0..cfg.num_hidden_layers).map(|i| empty_block(cfg, i)).collect(),
            // transformers builds fc_norm with PyTorch's default eps.
            head_norm: empty_norm(if cfg.use_mean_pooling { 1e-5 } else { eps }),
            classifier: empty_linear(),
            pos: to_device(sinusoid_table(cfg.num_patches(), cfg.hidden_size), device),
            mean_pooling: cfg.use_mean_pooling,
            tubelet: cfg.tubelet_size,
            patch_size: cfg.patch_size,
        }
    }

    /// The key table: every part with its checkpoint name, for [`super::checkpoint::Load`] and [`super::checkpoint::Export`].
    pub(super) fn walk(&mut self, cfg: &ModelConfig, w: &mut impl Walk) -> Result<(), ModelError> {
        let (d, c, t, p) = (cfg.hidden_size, cfg.num_channels, self.tubelet, self.patch_size);
        w.patch(&mut self.patch, keys::PATCH, &[d, c, t, p, p])?;
        for (i, b) in self.blocks.iter_mut().enumerate() {
            walk_block(w, &keys::layer(i), b, Qkv::SplitBiases { bias: cfg.qkv_bias }, cfg)?;
        }
        w.norm(&mut self.head_norm, if self.mean_pooling { keys::FC_NORM } else { keys::NORM }, d)?;
        w.classifier(&mut self.classifier, keys::CLASSIFIER, d)
    }

    /// Token features after the encoder; `seed`: training's dropouts (see [`layers::Rates`]).
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, tokens, hidden]
    pub fn encode(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<3> {
        let x = ops::linear(&self.patch, layers::tubelets(pixel_values, self.tubelet, self.patch_size));
        let [_, n, d] = x.dims();
        // A clip of another size (forward_interpolated): the table of its token count.
        let pos = if n == self.pos.dims()[1] { self.pos.clone() } else { to_device(sinusoid_table(n, d), &x.device()) };
        let mut x = x + pos;
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward(x, layers::site_seed(seed, i, 0));
        }
        x
    }

    /// Logits; `seed`: training's dropouts, `None` in evaluation.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, labels]
    pub fn forward(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<2> {
        let x = self.encode(pixel_values, seed);
        let [b, _, d] = x.dims();
        let pooled = if self.mean_pooling {
            self.head_norm.forward(x.mean_dim(1)).reshape([b, d])
        } else {
            self.head_norm.forward(x).narrow(1, 0, 1).reshape([b, d])
        };
        self.classifier.forward(pooled)
    }
}
