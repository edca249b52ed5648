//! VideoPrism (Zhao et al., 2024) for video classification, as transformers'
//! `VideoPrismForVideoClassification`: a factorised encoder (ViViT's "model
//! 2") — per-frame patches (`tubelet_size` [1, p, p]) plus a learned spatial
//! position table, `num_spatial_layers` pre-norm blocks over each frame's
//! patches, `layernorm1`; then each patch position's frames plus a learned
//! temporal table, `num_temporal_layers` blocks over them, `layernorm2` —
//! whose attention logits are soft-capped (`cap * tanh(logits / cap)`,
//! `attn_logit_softcapping`); then multi-head attention pooling from a learned
//! query (its queries scaled per dimension by `softplus(per_dim_scale)`, no
//! soft-cap), `head_layernorm` and a linear classifier.
//!
//! Every LayerNorm is VideoPrism's own: it scales by `weight + 1` (the
//! checkpoints store gamma - 1), so the weight is kept as stored and the one
//! is added in the forward pass, as transformers does.
//!
//! transformers' logits are `(batch, 1, labels)` (the pooled query token is
//! kept); vidi's are `(batch, labels)`, like the other architectures.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{activation, Tensor};

use super::checkpoint::{empty_attention, empty_linear, empty_mlp, empty_norm, empty_param, Walk};
use super::config::ModelConfig;
use super::layers::{self, Block, Norm};
use super::{resize, ModelError};
use crate::backend::ops::{self, mix};
use crate::backend::{to_device, HostTensor};
use crate::dataset::transforms::linear_resample_matrix;

/// Checkpoint names of VideoPrism's parts (the table [`VideoPrism::walk`] visits).
pub mod keys {
    /// The prefix of the encoder's keys in the classifier's checkpoints; the
    /// vision model's own checkpoints (`VideoPrismVisionModel`) have none.
    pub const PREFIX: &str = "vision_model.";
    /// Per-frame patch projection (Conv3d with kernel [1, p, p]).
    pub const PATCH: &str = "vision_model.spatial_embeddings.patch_embeddings.projection";
    /// Learned spatial position table [1, patches, hidden].
    pub const SPATIAL_POS: &str = "vision_model.spatial_embeddings.position_embeddings";
    /// Learned temporal position table [1, frames, hidden].
    pub const TEMPORAL_POS: &str = "vision_model.temporal_embeddings.position_embeddings";
    /// LayerNorm after the spatial blocks.
    pub const NORM1: &str = "vision_model.layernorm1";
    /// LayerNorm after the temporal blocks.
    pub const NORM2: &str = "vision_model.layernorm2";
    /// The attention-pooling head.
    pub const HEAD: &str = "head";
    /// LayerNorm of the pooled feature.
    pub const HEAD_NORM: &str = "head_layernorm";
    /// Classifier.
    pub const CLASSIFIER: &str = "classifier";
    /// Spatial block `i`: `layernorm_before`, `attention.{q,k,v,o}_proj`, `layernorm_after`, `mlp.fc1`, `mlp.fc2`.
    pub fn spatial_layer(i: usize) -> String {
        format!("vision_model.spatial_layers.{i}")
    }
    /// Temporal block `i` (the parts of [`spatial_layer`]).
    pub fn temporal_layer(i: usize) -> String {
        format!("vision_model.temporal_layers.{i}")
    }
}

/// `_R_SOFTPLUS_0` of transformers: 1 / softplus(0), so that a zero
/// `per_dim_scale` leaves the queries scaled by 1 / sqrt(head_dim).
#[allow(clippy::approx_constant)] // transformers' literal, not log2(e) to the last digit
const R_SOFTPLUS_0: f64 = 1.442695041;

/// The multi-head attention pooling head: one learned query token attends to
/// every token of the clip.
#[derive(Module, Debug)]
pub struct PoolingHead {
    /// `q_proj` (hidden -> heads * head_dim, head_dim = intermediate_size / heads).
    pub q: Linear,
    /// `k_proj`.
    pub k: Linear,
    /// `v_proj`.
    pub v: Linear,
    /// `o_proj` (heads * head_dim -> hidden).
    pub o: Linear,
    /// `per_dim_scale` [head_dim]: the queries' scale is `softplus` of it.
    pub per_dim_scale: Param<Tensor<1>>,
    /// `pooling_attention_query` [1, 1, hidden].
    pub query: Param<Tensor<3>>,
    /// Heads.
    pub heads: usize,
    /// Dropout of the attention probabilities (`attention_probs_dropout_prob`, training only).
    pub dropout: f64,
}

/// VideoPrism with its pooling head and classifier.
#[derive(Module, Debug)]
pub struct VideoPrism {
    /// Patch projection as a Linear over flattened patches.
    pub patch: Linear,
    /// Spatial position table [1, patches, hidden].
    pub spatial_pos: Param<Tensor<3>>,
    /// Blocks over each frame's patches.
    pub spatial: Vec<Block>,
    /// `layernorm1`.
    pub norm1: Norm,
    /// Temporal position table [1, frames, hidden].
    pub temporal_pos: Param<Tensor<3>>,
    /// Blocks over each patch position's frames.
    pub temporal: Vec<Block>,
    /// `layernorm2`.
    pub norm2: Norm,
    /// The attention-pooling head.
    pub head: PoolingHead,
    /// `head_layernorm`.
    pub head_norm: Norm,
    /// Classifier.
    pub classifier: Linear,
    /// Patch size.
    pub patch_size: usize,
    /// `attn_logit_softcapping` (0: none).
    pub softcap: f64,
    /// `hidden_dropout_prob`, of the embeddings (training only).
    pub embedding_dropout: f64,
}

/// VideoPrism's LayerNorm: scale `weight + 1`.
///
/// # Shapes
/// x: [batch, tokens, hidden] -> same
pub fn norm(n: &Norm, x: Tensor<3>) -> Tensor<3> {
    ops::layer_norm(x, n.gamma.val().add_scalar(1.0), n.beta.val(), n.eps)
}

impl VideoPrism {
    /// The network of `cfg`'s shape, its weights empty until [`super::checkpoint::Load`] walks it.
    pub fn empty(cfg: &ModelConfig) -> VideoPrism {
        let eps = cfg.layer_norm_eps;
        let block = |i: usize| Block {
            norm1: empty_norm(eps),
            attn: empty_attention(cfg.num_attention_heads),
            norm2: empty_norm(eps),
            mlp: empty_mlp(cfg),
            rates: cfg.rates(i),
        };
        VideoPrism {
            patch: empty_linear(),
            spatial_pos: empty_param(),
            spatial: (0..cfg.num_hidden_layers).map(block).collect(),
            norm1: empty_norm(eps),
            temporal_pos: empty_param(),
            temporal: (0..cfg.num_temporal_layers).map(block).collect(),
            norm2: empty_norm(eps),
            head: PoolingHead {
                q: empty_linear(),
                k: empty_linear(),
                v: empty_linear(),
                o: empty_linear(),
                per_dim_scale: empty_param(),
                query: empty_param(),
                heads: cfg.num_attention_heads,
                dropout: cfg.attention_probs_dropout_prob,
            },
            head_norm: empty_norm(eps),
            classifier: empty_linear(),
            patch_size: cfg.patch_size,
            softcap: cfg.attn_logit_softcapping,
            embedding_dropout: cfg.hidden_dropout_prob,
        }
    }

    /// The key table: every part with its checkpoint name, for [`super::checkpoint::Load`] and [`super::checkpoint::Export`].
    pub(super) fn walk(&mut self, cfg: &ModelConfig, w: &mut impl Walk) -> Result<(), ModelError> {
        let (d, c, p) = (cfg.hidden_size, cfg.num_channels, self.patch_size);
        let side = cfg.image_size / p;
        w.patch(&mut self.patch, keys::PATCH, &[d, c, 1, p, p])?;
        w.param(&mut self.spatial_pos, keys::SPATIAL_POS, [1, side * side, d])?;
        for (i, b) in self.spatial.iter_mut().enumerate() {
            walk_layer(w, &keys::spatial_layer(i), b, cfg)?;
        }
        w.norm(&mut self.norm1, keys::NORM1, d)?;
        w.param(&mut self.temporal_pos, keys::TEMPORAL_POS, [1, cfg.num_frames, d])?;
        for (i, b) in self.temporal.iter_mut().enumerate() {
            walk_layer(w, &keys::temporal_layer(i), b, cfg)?;
        }
        w.norm(&mut self.norm2, keys::NORM2, d)?;
        let (hd, inner) = head_dims(cfg);
        let h = &mut self.head;
        let head = |part: &str| format!("{}.{part}", keys::HEAD);
        for (l, part) in [(&mut h.q, "q_proj"), (&mut h.k, "k_proj"), (&mut h.v, "v_proj")] {
            w.linear(l, &head(part), d, inner, cfg.qkv_bias)?;
        }
        w.linear(&mut h.o, &head("o_proj"), inner, d, true)?;
        w.param(&mut h.per_dim_scale, &head("per_dim_scale"), [hd])?;
        w.param(&mut h.query, &head("pooling_attention_query"), [1, 1, d])?;
        w.norm(&mut self.head_norm, keys::HEAD_NORM, d)?;
        w.classifier(&mut self.classifier, keys::CLASSIFIER, d)
    }

    /// The vision model's output (`last_hidden_state`): tokens in frame, row,
    /// column order after `layernorm2`; `seed`: training's dropouts.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, frames * patches, hidden]
    pub fn encode(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<3> {
        let [b, t, ..] = pixel_values.dims();
        let x = self.encode_spatial(pixel_values, seed);
        let [_, n, d] = x.dims();
        // Each patch position's frames, with the temporal table.
        let x = x.reshape([b, t, n, d]).swap_dims(1, 2).reshape([b * n, t, d]) + self.temporal_table(t);
        let mut x = self.drop_embeddings(x, layers::site_seed(seed, 1 << 20, 1));
        for (i, blk) in self.temporal.iter().enumerate() {
            x = self.layer(blk, x, layers::site_seed(seed, 1 << 16 | i, 0));
        }
        norm(&self.norm2, x).reshape([b, n, t, d]).swap_dims(1, 2).reshape([b, t * n, d])
    }

    /// The spatial encoder's output after `layernorm1`, one sequence per frame.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch * frames, patches, hidden]
    pub fn encode_spatial(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<3> {
        let [b, t, _, h, w] = pixel_values.dims();
        let x = ops::linear(&self.patch, layers::tubelets(pixel_values, 1, self.patch_size));
        let [_, tn, d] = x.dims();
        let x = x.reshape([b * t, tn / t, d]) + self.spatial_table(h / self.patch_size, w / self.patch_size);
        let mut x = self.drop_embeddings(x, layers::site_seed(seed, 1 << 20, 0));
        for (i, blk) in self.spatial.iter().enumerate() {
            x = self.layer(blk, x, layers::site_seed(seed, i, 0));
        }
        norm(&self.norm1, x)
    }

    /// The spatial position table for a `rows x cols` patch grid: the learned one
    /// for the config's square grid, else that one resized (bilinear, antialiased)
    /// as transformers' `interpolate_pos_encoding` does.
    ///
    /// # Shapes
    /// -> [1, rows * cols, hidden]
    fn spatial_table(&self, rows: usize, cols: usize) -> Tensor<3> {
        let table = self.spatial_pos.val();
        let n = table.dims()[1];
        let side = (n as f64).sqrt().round() as usize;
        if rows == side && cols == side {
            return table;
        }
        let m = HostTensor::new(vec![1, rows * cols, n], resize::bilinear_grid(side, rows, cols));
        to_device::<3>(m, &table.device()).matmul(table)
    }

    /// The temporal position table for `frames` frames: the learned one for the
    /// config's frame count, else that one resized along time (linear, antialiased),
    /// as transformers' `interpolate_pos_encoding` does.
    ///
    /// # Shapes
    /// -> [1, frames, hidden]
    fn temporal_table(&self, frames: usize) -> Tensor<3> {
        let table = self.temporal_pos.val();
        let n = table.dims()[1];
        if frames == n {
            return table;
        }
        let m = HostTensor::new(vec![1, frames, n], linear_resample_matrix(n, frames, true));
        to_device::<3>(m, &table.device()).matmul(table)
    }

    /// The pooled feature after `head_layernorm`.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, hidden]
    pub fn pooled(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<2> {
        let x = self.encode(pixel_values, seed);
        let [b, _, d] = x.dims();
        let h = &self.head;
        let hd = h.per_dim_scale.val().dims()[0];
        let query = h.query.val().repeat_dim(0, b);
        let q = ops::linear(&h.q, query);
        let inner = q.dims()[2];
        // The query's scale per dimension: softplus(per_dim_scale) / softplus(0) / sqrt(head_dim).
        let scale = activation::softplus(h.per_dim_scale.val(), 1.0).mul_scalar(R_SOFTPLUS_0 / (hd as f64).sqrt());
        let q = (q.reshape([b, 1, h.heads, hd]) * scale.reshape([1, 1, 1, hd])).reshape([b, 1, inner]);
        let (k, v) = (ops::linear(&h.k, x.clone()), ops::linear(&h.v, x));
        let drop = layers::site_seed(seed, 1 << 21, 0).filter(|_| h.dropout > 0.0).map(|s| (h.dropout, s));
        let pooled = ops::linear(&h.o, ops::scaled_cross_attention(q, k, v, h.heads, 1.0, drop));
        norm(&self.head_norm, pooled).reshape([b, d])
    }

    /// Logits; `seed`: training's dropouts, `None` in evaluation.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, labels]
    pub fn forward(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<2> {
        self.classifier.forward(self.pooled(pixel_values, seed))
    }

    /// One pre-norm block with soft-capped attention; dropout after the
    /// attention's and the MLP's output projections (`hidden_dropout_prob`).
    fn layer(&self, b: &Block, x: Tensor<3>, seed: Option<u64>) -> Tensor<3> {
        let drop = seed.filter(|_| b.rates.active());
        let a = &b.attn;
        let h = ops::capped_self_attention(
            norm(&b.norm1, x.clone()),
            [&a.q, &a.k, &a.v, &a.o],
            a.heads,
            self.softcap,
            x,
            drop.map(|s| b.rates.attention(mix(s, 1))),
        );
        b.mlp.forward_add(norm(&b.norm2, h.clone()), h, drop.map(|s| (b.rates, mix(s, 2))))
    }

    fn drop_embeddings(&self, x: Tensor<3>, seed: Option<u64>) -> Tensor<3> {
        match seed {
            Some(s) if self.embedding_dropout > 0.0 => ops::dropout(x, self.embedding_dropout, s, 1),
            _ => x,
        }
    }
}

/// The pooling head's head_dim (`intermediate_size // heads`) and width (heads x head_dim).
pub fn head_dims(cfg: &ModelConfig) -> (usize, usize) {
    let hd = cfg.intermediate_size / cfg.num_attention_heads;
    (hd, hd * cfg.num_attention_heads)
}

/// One encoder block's parts under `layer`.
fn walk_layer(w: &mut impl Walk, layer: &str, b: &mut Block, cfg: &ModelConfig) -> Result<(), ModelError> {
    let (d, m) = (cfg.hidden_size, cfg.intermediate_size);
    w.norm(&mut b.norm1, &format!("{layer}.layernorm_before"), d)?;
    let a = &mut b.attn;
    for (l, part) in [(&mut a.q, "q_proj"), (&mut a.k, "k_proj"), (&mut a.v, "v_proj")] {
        w.linear(l, &format!("{layer}.attention.{part}"), d, d, cfg.qkv_bias)?;
    }
    w.linear(&mut a.o, &format!("{layer}.attention.o_proj"), d, d, true)?;
    w.norm(&mut b.norm2, &format!("{layer}.layernorm_after"), d)?;
    w.linear(&mut b.mlp.fc1, &format!("{layer}.mlp.fc1"), d, m, true)?;
    w.linear(&mut b.mlp.fc2, &format!("{layer}.mlp.fc2"), m, d, true)
}

/// The LayerNorm weights of the whole network at identity (VideoPrism's are
/// stored as gamma - 1: zeros) and a zero `per_dim_scale`, as transformers
/// initialises them: what a model from random init starts from.
pub fn identity_norms(cfg: &ModelConfig) -> BTreeMap<String, HostTensor> {
    let d = cfg.hidden_size;
    let mut names = vec![keys::NORM1.to_string(), keys::NORM2.to_string(), keys::HEAD_NORM.to_string()];
    for i in 0..cfg.num_hidden_layers {
        names.extend(["layernorm_before", "layernorm_after"].map(|n| format!("{}.{n}", keys::spatial_layer(i))));
    }
    for i in 0..cfg.num_temporal_layers {
        names.extend(["layernorm_before", "layernorm_after"].map(|n| format!("{}.{n}", keys::temporal_layer(i))));
    }
    let mut out: BTreeMap<String, HostTensor> =
        names.into_iter().map(|n| (format!("{n}.weight"), HostTensor::new(vec![d], vec![0.0; d]))).collect();
    let (hd, _) = head_dims(cfg);
    out.insert(format!("{}.per_dim_scale", keys::HEAD), HostTensor::new(vec![hd], vec![0.0; hd]));
    out
}

/// A new attention-pooling head and `head_layernorm` for a checkpoint that has
/// none (the published ones are the vision model alone), initialised as
/// transformers' `_init_weights` does: LeCun-normal projections and query
/// (std 1 / sqrt(fan_in)), zero biases, zero `per_dim_scale`, identity norm.
pub fn new_head(cfg: &ModelConfig, seed: u64) -> BTreeMap<String, HostTensor> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(mix(seed, 0x0070_7269_736d));
    let d = cfg.hidden_size;
    let (hd, inner) = head_dims(cfg);
    let mut out = BTreeMap::new();
    let mut normal = |n: usize, fan_in: usize| {
        super::checkpoint::rand_distr_normal(&mut rng, n, (1.0 / fan_in as f64).sqrt() as f32)
    };
    let head = |part: &str| format!("{}.{part}", keys::HEAD);
    for part in ["q_proj", "k_proj", "v_proj"] {
        out.insert(head(&format!("{part}.weight")), HostTensor::new(vec![inner, d], normal(inner * d, d)));
        if cfg.qkv_bias {
            out.insert(head(&format!("{part}.bias")), HostTensor::new(vec![inner], vec![0.0; inner]));
        }
    }
    out.insert(head("o_proj.weight"), HostTensor::new(vec![d, inner], normal(d * inner, inner)));
    out.insert(head("o_proj.bias"), HostTensor::new(vec![d], vec![0.0; d]));
    out.insert(head("pooling_attention_query"), HostTensor::new(vec![1, 1, d], normal(d, d)));
    out.insert(head("per_dim_scale"), HostTensor::new(vec![hd], vec![0.0; hd]));
    for part in ["weight", "bias"] {
        out.insert(format!("{}.{part}", keys::HEAD_NORM), HostTensor::new(vec![d], vec![0.0; d]));
    }
    out
}
