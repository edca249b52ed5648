//! TimeSformer (Bertasius et al., 2021), divided space-time attention, as
//! transformers' `TimesformerForVideoClassification`: per-frame patch
//! embedding with CLS and learned positions, learned time embeddings, blocks
//! of temporal attention (+ `temporal_dense`) then spatial attention per frame
//! with the frames' CLS outputs averaged, MLP; final LayerNorm, CLS classifier.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::Tensor;

use super::checkpoint::{empty_attention, empty_linear, empty_mlp, empty_norm, empty_param, walk_vit_layer, Qkv, Walk};
use super::config::ModelConfig;
use super::layers::{self, Mlp, SelfAttention};
use super::ModelError;
use crate::backend::ops::{self, Groups};

/// Checkpoint names of TimeSformer's parts (the table [`Timesformer::walk`] visits).
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
    /// Encoder layer `i`: `temporal_layernorm`, `temporal_attention` (fused qkv),
    /// `temporal_dense`, then the parts of [`super::super::checkpoint::walk_vit_layer`].
    pub fn layer(i: usize) -> String {
        format!("timesformer.encoder.layer.{i}")
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
    /// Dropout and drop-path probabilities (training only).
    #[module(skip)]
    pub rates: layers::Rates,
}

impl DividedBlock {
    /// Temporal attention within each patch's frames (CLS, token 0, keeps its
    /// residual), then spatial attention within each frame's patches together
    /// with CLS (whose outputs are averaged over the frames), then the MLP.
    /// The tokens stay in their order: [`Groups`] tells the attention which
    /// tokens form a sequence. LayerNorms and projections act on each token
    /// alone, and the mean of CLS's per-frame outputs commutes with the output
    /// projection, so this is transformers' computation without its reordering.
    ///
    /// In training (`seed`), transformers' random parts: dropout of each
    /// attention's probabilities and output; drop-path of each temporal
    /// sequence (a patch's frames) before `temporal_dense`, of each frame's
    /// spatial sequence before CLS's mean, and of each sample's MLP output.
    ///
    /// # Shapes
    /// x: [batch, 1 + patches * frames, hidden] (token = 1 + patch * frames + frame) -> same
    pub fn forward(&self, x: Tensor<3>, frames: usize, seed: Option<u64>) -> Tensor<3> {
        let drop = seed.filter(|_| self.rates.active());
        let temporal = drop.map(|s| self.rates.attention(ops::mix(s, 1)));
        let t =
            self.temporal_attn.grouped(self.temporal_norm.forward(x.clone()), Groups::Frames(frames), None, temporal);
        let x = ops::linear_add(&self.temporal_dense, t, x, 1);
        let spatial = drop.map(|s| self.rates.attention(ops::mix(s, 2)));
        let h = self.attn.grouped(self.norm1.forward(x.clone()), Groups::Patches(frames), Some(x), spatial);
        self.mlp.forward_add(self.norm2.forward(h.clone()), h, drop.map(|s| (self.rates, ops::mix(s, 3))))
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
    /// `hidden_dropout_prob`, of the embeddings (training only).
    pub hidden_dropout: f64,
}

impl Timesformer {
    /// The network of `cfg`'s shape, its weights empty until [`super::checkpoint::Load`] walks it.
    pub fn empty(cfg: &ModelConfig) -> Timesformer {
        let (eps, heads) = (cfg.layer_norm_eps, cfg.num_attention_heads);
        let block = |i: usize| DividedBlock {
            temporal_norm: empty_norm(eps),
            temporal_attn: empty_attention(heads),
            temporal_dense: empty_linear(),
            norm1: empty_norm(eps),
            attn: empty_attention(heads),
            norm2: empty_norm(eps),
            mlp: empty_mlp(cfg),
            rates: cfg.rates(i),
        };
        Timesformer {
            patch: empty_linear(),
            cls: empty_param(),
            pos: empty_param(),
            time: empty_param(),
            blocks: (0..cfg.num_hidden_layers).map(block).collect(),
            norm: empty_norm(eps),
            classifier: empty_linear(),
            patch_size: cfg.patch_size,
            hidden_dropout: cfg.hidden_dropout_prob,
        }
    }

    /// The key table: every part with its checkpoint name, for [`super::checkpoint::Load`] and [`super::checkpoint::Export`].
    pub(super) fn walk(&mut self, cfg: &ModelConfig, w: &mut impl Walk) -> Result<(), ModelError> {
        let (d, c, p, f) = (cfg.hidden_size, cfg.num_channels, self.patch_size, cfg.num_frames);
        let patches = (cfg.image_size / p).pow(2);
        let qkv = Qkv::Fused { bias: cfg.qkv_bias };
        w.patch(&mut self.patch, keys::PATCH, &[d, c, p, p])?;
        w.param(&mut self.cls, keys::CLS, [1, 1, d])?;
        w.param(&mut self.pos, keys::POS, [1, 1 + patches, d])?;
        w.param(&mut self.time, keys::TIME, [1, f, d])?;
        for (i, b) in self.blocks.iter_mut().enumerate() {
            let layer = keys::layer(i);
            w.norm(&mut b.temporal_norm, &format!("{layer}.temporal_layernorm"), d)?;
            w.attention(&mut b.temporal_attn, &format!("{layer}.temporal_attention"), qkv, d)?;
            w.linear(&mut b.temporal_dense, &format!("{layer}.temporal_dense"), d, d, true)?;
            walk_vit_layer(w, &layer, [&mut b.norm1, &mut b.norm2], &mut b.attn, &mut b.mlp, qkv, cfg)?;
        }
        w.norm(&mut self.norm, keys::NORM, d)?;
        w.classifier(&mut self.classifier, keys::CLASSIFIER, d)
    }

    /// Token features after the final LayerNorm; `seed`: training's dropouts (see [`layers::Rates`]).
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, 1 + patches * frames, hidden]
    pub fn encode(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<3> {
        let [b, f, c, h, w] = pixel_values.dims();
        let x =
            ops::linear(&self.patch, layers::tubelets(pixel_values.reshape([b * f, 1, c, h, w]), 1, self.patch_size));
        let [_, patches, d] = x.dims(); // [b*f, patches, d]
        let pos = self.pos.val();
        let cls = self.cls.val() + pos.clone().narrow(1, 0, 1); // [1, 1, d]
        let table = pos.dims()[1] - 1;
        let x = if patches == table {
            x + pos.narrow(1, 1, patches)
        } else {
            // Another picture size (forward_interpolated): transformers' nearest interpolation of
            // the position grid to the clip's, `(1 + patches) / width` rows by `width` columns.
            let side = (table as f64).sqrt().round() as usize;
            let cols = w / self.patch_size;
            let idx: Vec<i64> = super::resize::nearest_grid(side, (1 + patches) / cols, cols)
                .into_iter()
                .map(|i| 1 + i as i64)
                .collect();
            let idx =
                Tensor::<1, burn::tensor::Int>::from_data(burn::tensor::TensorData::new(idx, [patches]), &x.device());
            x + pos.select(1, idx)
        };
        // The embeddings' dropouts (training): after the positions (`pos_drop`, CLS
        // included), after the time embeddings (`time_drop`, patches only).
        let drop = |x: Tensor<3>, site: u64| match layers::site_seed(seed, usize::MAX, site) {
            Some(s) => ops::dropout(x, self.hidden_dropout, s, 1),
            None => x,
        };
        let (x, cls) = (drop(x, 0), drop(cls.repeat_dim(0, b), 1));
        // Token order patch * frames + frame, plus a time embedding per frame.
        let x = x.reshape([b, f, patches, d]).swap_dims(1, 2).reshape([b * patches, f, d]) + self.time.val();
        let x = drop(x.reshape([b, patches * f, d]), 2);
        let mut x = Tensor::cat(vec![cls, x], 1);
        for (i, blk) in self.blocks.iter().enumerate() {
            x = blk.forward(x, f, layers::site_seed(seed, i, 0));
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
