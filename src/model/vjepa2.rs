//! V-JEPA 2 (Assran et al., 2025) for video classification, as transformers'
//! `VJEPA2ForVideoClassification`: a Conv3d tubelet embedding with no class
//! token and no position table, pre-norm blocks whose attention rotates its
//! queries and keys by 3-D rotary embeddings ([`ops::Rope`]), a final
//! LayerNorm, then the attentive pooler (`num_pooler_layers` self-attention
//! blocks, one cross-attention from a learned query token) and a linear
//! classifier. The checkpoint's predictor (pre-training only) is not built:
//! its weights are left unused and reported.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::Tensor;

use super::checkpoint::{empty_attention, empty_linear, empty_mlp, empty_norm, empty_param, Walk};
use super::config::ModelConfig;
use super::layers::{self, Block, Mlp, Norm, Rates, SelfAttention};
use super::ModelError;
use crate::backend::ops::{self, mix, Rope};

/// Checkpoint names of V-JEPA 2's parts (the table [`Vjepa2::walk`] visits).
pub mod keys {
    /// Tubelet projection (Conv3d).
    pub const PATCH: &str = "vjepa2.encoder.embeddings.patch_embeddings.proj";
    /// The encoder's final LayerNorm.
    pub const NORM: &str = "vjepa2.encoder.layernorm";
    /// The pooler's learned query token [1, 1, hidden].
    pub const QUERY: &str = "pooler.query_tokens";
    /// The pooler's cross-attention layer.
    pub const CROSS: &str = "pooler.cross_attention_layer";
    /// Classifier.
    pub const CLASSIFIER: &str = "classifier";
    /// Encoder layer `i`: `norm1`, `attention.{query,key,value,proj}`, `norm2`, `mlp.fc1`, `mlp.fc2`.
    pub fn layer(i: usize) -> String {
        format!("vjepa2.encoder.layer.{i}")
    }
    /// Pooler self-attention layer `i`: `layer_norm1`, `self_attn.{q,k,v,out}_proj`, `layer_norm2`, `mlp`.
    pub fn pooler_layer(i: usize) -> String {
        format!("pooler.self_attention_layers.{i}")
    }
    /// Keys of the predictor (pre-training only), which classification ignores.
    pub const PREDICTOR: &str = "vjepa2.predictor.";
}

/// The pooler's cross-attention layer: the query token attends to the
/// normalised tokens (no output projection), then an MLP block.
#[derive(Module, Debug)]
pub struct CrossLayer {
    /// `layer_norm1`, of the tokens (keys and values), not of the query.
    pub norm1: Norm,
    /// `cross_attn.q_proj`.
    pub q: Linear,
    /// `cross_attn.k_proj`.
    pub k: Linear,
    /// `cross_attn.v_proj`.
    pub v: Linear,
    /// `layer_norm2`.
    pub norm2: Norm,
    /// MLP.
    pub mlp: Mlp,
    /// Heads.
    pub heads: usize,
    /// Attention dropout (`attention_dropout`, training only).
    pub dropout: f64,
}

/// V-JEPA 2 with its attentive pooler and classifier.
#[derive(Module, Debug)]
pub struct Vjepa2 {
    /// Tubelet projection as a Linear over flattened tubelets.
    pub patch: Linear,
    /// Encoder blocks (their attentions use [`Vjepa2::rope`]).
    pub blocks: Vec<Block>,
    /// The encoder's final LayerNorm.
    pub norm: Norm,
    /// Pooler self-attention blocks.
    pub pooler_blocks: Vec<Block>,
    /// The pooler's query token [1, 1, hidden].
    pub query: Param<Tensor<3>>,
    /// The pooler's cross-attention layer.
    pub cross: CrossLayer,
    /// Classifier.
    pub classifier: Linear,
    /// Patches per side of a frame (the rotary embeddings' grid).
    pub grid: usize,
    /// Frames per tubelet.
    pub tubelet: usize,
    /// Patch size.
    pub patch_size: usize,
}

impl Vjepa2 {
    /// The network of `cfg`'s shape, its weights empty until [`super::checkpoint::Load`] walks it.
    pub fn empty(cfg: &ModelConfig) -> Vjepa2 {
        let (eps, heads) = (cfg.layer_norm_eps, cfg.num_attention_heads);
        let block = |rates: Rates| Block {
            norm1: empty_norm(eps),
            attn: empty_attention(heads),
            norm2: empty_norm(eps),
            mlp: empty_mlp(cfg),
            rates,
        };
        // The pooler's rates: its attention dropout only (no drop-path, no hidden dropout).
        let pooler = Rates { hidden: 0.0, attention: cfg.pooler_attention_dropout, path: 0.0 };
        let grid = cfg.image_size / cfg.patch_size;
        Vjepa2 {
            patch: empty_linear(),
            blocks: (0..cfg.num_hidden_layers).map(|i| block(cfg.rates(i))).collect(),
            norm: empty_norm(eps),
            pooler_blocks: (0..cfg.num_pooler_layers).map(|_| block(pooler)).collect(),
            query: empty_param(),
            cross: CrossLayer {
                norm1: empty_norm(eps),
                q: empty_linear(),
                k: empty_linear(),
                v: empty_linear(),
                norm2: empty_norm(eps),
                mlp: empty_mlp(cfg),
                heads,
                dropout: cfg.pooler_attention_dropout,
            },
            classifier: empty_linear(),
            grid,
            tubelet: cfg.tubelet_size,
            patch_size: cfg.patch_size,
        }
    }

    /// The key table: every part with its checkpoint name, for [`super::checkpoint::Load`] and [`super::checkpoint::Export`].
    pub(super) fn walk(&mut self, cfg: &ModelConfig, w: &mut impl Walk) -> Result<(), ModelError> {
        let (d, c, t, p) = (cfg.hidden_size, cfg.num_channels, self.tubelet, self.patch_size);
        let (m, pooler_m) = (cfg.intermediate_size, 4 * d); // the pooler's MLPs are always 4 x hidden
        w.patch(&mut self.patch, keys::PATCH, &[d, c, t, p, p])?;
        for (i, b) in self.blocks.iter_mut().enumerate() {
            let layer = keys::layer(i);
            w.norm(&mut b.norm1, &format!("{layer}.norm1"), d)?;
            walk_attention(
                w,
                &mut b.attn,
                &format!("{layer}.attention"),
                ["query", "key", "value", "proj"],
                cfg.qkv_bias,
                d,
            )?;
            w.norm(&mut b.norm2, &format!("{layer}.norm2"), d)?;
            walk_mlp(w, &mut b.mlp, &layer, d, m)?;
        }
        w.norm(&mut self.norm, keys::NORM, d)?;
        for (i, b) in self.pooler_blocks.iter_mut().enumerate() {
            let layer = keys::pooler_layer(i);
            w.norm(&mut b.norm1, &format!("{layer}.layer_norm1"), d)?;
            let names = ["q_proj", "k_proj", "v_proj", "out_proj"];
            walk_attention(w, &mut b.attn, &format!("{layer}.self_attn"), names, true, d)?;
            w.norm(&mut b.norm2, &format!("{layer}.layer_norm2"), d)?;
            walk_mlp(w, &mut b.mlp, &layer, d, pooler_m)?;
        }
        w.param(&mut self.query, keys::QUERY, [1, 1, d])?;
        let x = &mut self.cross;
        w.norm(&mut x.norm1, &format!("{}.layer_norm1", keys::CROSS), d)?;
        for (l, part) in [(&mut x.q, "q_proj"), (&mut x.k, "k_proj"), (&mut x.v, "v_proj")] {
            w.linear(l, &format!("{}.cross_attn.{part}", keys::CROSS), d, d, true)?;
        }
        w.norm(&mut x.norm2, &format!("{}.layer_norm2", keys::CROSS), d)?;
        walk_mlp(w, &mut x.mlp, keys::CROSS, d, pooler_m)?;
        w.classifier(&mut self.classifier, keys::CLASSIFIER, d)
    }

    /// Token features after the encoder's final LayerNorm; `seed`: training's
    /// dropouts and drop-path (see [`layers::Rates`]).
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, tokens, hidden]
    pub fn encode(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<3> {
        let mut x = ops::linear(&self.patch, layers::tubelets(pixel_values, self.tubelet, self.patch_size));
        let [_, n, d] = x.dims();
        let heads = self.blocks.first().map_or(1, |b| b.attn.heads);
        let rope = Rope::new(n, self.grid, heads, d / heads, &x.device());
        for (i, b) in self.blocks.iter().enumerate() {
            let drop = layers::site_seed(seed, i, 0).filter(|_| b.rates.active());
            let a = &b.attn;
            let attn = drop.map(|s| b.rates.attention(mix(s, 1)));
            let h =
                ops::rope_self_attention(b.norm1.forward(x.clone()), [&a.q, &a.k, &a.v, &a.o], a.heads, &rope, x, attn);
            x = b.mlp.forward_add(b.norm2.forward(h.clone()), h, drop.map(|s| (b.rates, mix(s, 2))));
        }
        self.norm.forward(x)
    }

    /// Logits; `seed`: training's dropouts, `None` in evaluation.
    ///
    /// # Shapes
    /// pixel_values: [batch, frames, channels, height, width] -> [batch, labels]
    pub fn forward(&self, pixel_values: Tensor<5>, seed: Option<u64>) -> Tensor<2> {
        let mut x = self.encode(pixel_values, seed);
        for (i, b) in self.pooler_blocks.iter().enumerate() {
            x = b.forward(x, layers::site_seed(seed, 1 << 20 | i, 0));
        }
        let [b, _, d] = x.dims();
        let c = &self.cross;
        let query = self.query.val().repeat_dim(0, b);
        let kv = c.norm1.forward(x);
        let (q, k, v) = (ops::linear(&c.q, query.clone()), ops::linear(&c.k, kv.clone()), ops::linear(&c.v, kv));
        let drop = layers::site_seed(seed, 1 << 21, 0).filter(|_| c.dropout > 0.0).map(|s| (c.dropout, s));
        let h = query + ops::cross_attention(q, k, v, c.heads, drop);
        let h = c.mlp.forward_add(c.norm2.forward(h.clone()), h, None);
        self.classifier.forward(h.reshape([b, d]))
    }
}

/// An attention's four projections under `prefix`, named `names` (query, key, value, output).
fn walk_attention(
    w: &mut impl Walk,
    a: &mut SelfAttention,
    prefix: &str,
    names: [&str; 4],
    qkv_bias: bool,
    d: usize,
) -> Result<(), ModelError> {
    for (l, (name, bias)) in [&mut a.q, &mut a.k, &mut a.v, &mut a.o]
        .into_iter()
        .zip(names.into_iter().zip([qkv_bias, qkv_bias, qkv_bias, true]))
    {
        w.linear(l, &format!("{prefix}.{name}"), d, d, bias)?;
    }
    Ok(())
}

/// An MLP's `fc1` (`d -> m`) and `fc2` under `<prefix>.mlp`.
fn walk_mlp(w: &mut impl Walk, mlp: &mut Mlp, prefix: &str, d: usize, m: usize) -> Result<(), ModelError> {
    w.linear(&mut mlp.fc1, &format!("{prefix}.mlp.fc1"), d, m, true)?;
    w.linear(&mut mlp.fc2, &format!("{prefix}.mlp.fc2"), m, d, true)
}
