//! The one dispatch point for the heavy operations: linear, linear +
//! residual, LayerNorm, the MLP activations, self-attention over token groups,
//! training's dropout and drop-path, and the AdamW update. The models and the optimizer call these and nothing else for that
//! work; each operation decides here, by one rule, where it runs:
//!
//! - [`Route::CpuKernel`], the CPU backend outside autodiff (inference):
//!   vidi's kernels ([`super::kernels`]): gemm-based Linear layers that start
//!   from the bias (and the residual), blocked attention that reads the tokens
//!   in their order whatever the [`Groups`], vectorised GELU, a one-pass AdamW.
//! - [`Route::CpuAutodiff`], the CPU backend under autodiff (training): the
//!   same kernels as single autodiff operations with their own backward passes.
//! - [`Route::Generic`], any other backend (wgpu): Burn's tensor operations,
//!   with attention a block of queries at a time ([`super::blocked`]): no
//!   `heads x tokens x tokens` tensor, in inference or in training.
//!
//! Mixed precision ([`autocast`]): off the CPU, while a training step's
//! forward pass runs under it, the products (Linear layers, attention)
//! compute in f16 from f32 parameters and activations, as PyTorch's
//! `torch.autocast(dtype=torch.float16)` does; what goes from one product
//! to the next (the MLP's activated hidden layer, the attention's output)
//! stays f16; LayerNorm, the residual stream, softmax outside the blocked
//! attention and the loss stay in f32.
//!
//! Sizes: a Linear layer takes vidi's gemm in inference from
//! [`MIN_GEMM_ROWS`] rows (batch x tokens) on; an attention sequence takes
//! vidi's kernel when it is shorter than [`SHORT_SEQUENCE`] tokens (plain
//! loops) or at least [`MIN_GEMM_SEQUENCE`] (gemm), and Burn's attention in
//! between, where its materialised path is fast.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::nn::Linear;
use burn::tensor::{activation, Device, FloatDType, Tensor, TensorData};

use super::blocked;
use super::kernels::{self, grad};
pub use super::kernels::{mix, AdamWStep, Groups};

/// Where an operation on a device's tensors runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The CPU backend outside autodiff: vidi's kernels.
    CpuKernel,
    /// The CPU backend under autodiff: vidi's kernels as autodiff operations.
    CpuAutodiff,
    /// Any other backend: Burn's generic tensor operations.
    Generic,
}

/// The route for tensors on `device`. Burn's device equality ignores
/// autodiff, hence the explicit check (vidi never turns gradient
/// checkpointing on).
pub fn route(device: &Device) -> Route {
    if *device != Device::flex() {
        Route::Generic
    } else if device.is_autodiff() {
        Route::CpuAutodiff
    } else {
        Route::CpuKernel
    }
}

thread_local! {
    /// Whether this thread's products compute in f16 ([`autocast`]).
    static AUTOCAST: Cell<bool> = const { Cell::new(false) };
}

/// While alive, this thread's products off the CPU compute in f16; dropping
/// it restores what was before.
#[must_use = "autocast lasts as long as the guard"]
pub struct Autocast {
    was: bool,
}

impl Drop for Autocast {
    fn drop(&mut self) {
        AUTOCAST.with(|a| a.set(self.was));
    }
}

/// Mixed precision's forward pass: while the guard lives, this thread's
/// Linear layers and attention products on a GPU take f16 copies of their f32
/// inputs and parameters and hand back f32 results, except where the result
/// feeds the next product ([`linear_activation`], the blocked attention's
/// output), which stays f16. Autodiff records the
/// casts, so the gradients reach the f32 parameters in f32 (computed in f16
/// through the products). On the CPU it changes nothing (training there is
/// f32 only, see [`super::device::check_f16`]).
pub fn autocast(on: bool) -> Autocast {
    Autocast { was: AUTOCAST.with(|a| a.replace(on)) }
}

/// Whether products of tensors on `device` compute in f16 now.
fn autocasting(device: &Device) -> bool {
    AUTOCAST.with(Cell::get) && route(device) == Route::Generic
}

/// `t` in f16.
fn half<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    t.cast(FloatDType::F16)
}

/// `t` in f32.
fn full<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    t.cast(FloatDType::F32)
}

/// `a.matmul(b)`, its product in f16 under [`autocast`] (the result in f32).
fn matmul<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    match autocasting(&a.device()) {
        true => full(half(a).matmul(half(b))),
        false => a.matmul(b),
    }
}

/// Whether the models' GPU is the window's own (see [`pace_for_window`]).
static PACED: AtomicBool = AtomicBool::new(false);

/// Makes GPU work wait, on a device the window shares, at each attention
/// layer and each MLP (forward and backward), every few gradients of the
/// gradient norm and every other optimizer update, until the work queued
/// before it has finished. The window's frames go on the same
/// queue: without this, a frame would wait for a whole training step queued
/// ahead of it (hundreds of ms on a software adapter); with it, for about one
/// layer's kernels. The app sets it when its models compute on the window's
/// device; the CLI never does.
pub fn pace_for_window(on: bool) {
    PACED.store(on, Ordering::Relaxed);
}

/// Waits for `device`'s queued work when [`pace_for_window`] is on (off the CPU).
pub fn pace(device: &Device) {
    if PACED.load(Ordering::Relaxed) && route(device) == Route::Generic {
        // A failed wait (a lost device) surfaces at the next read of a result.
        let _ = device.sync();
    }
}

/// Rows (batch x tokens) from which a Linear layer takes vidi's gemm in
/// inference on the CPU; below, Burn's Linear.
pub const MIN_GEMM_ROWS: usize = 128;
/// Tokens per attention sequence from which vidi's CPU attention uses gemm.
pub const MIN_GEMM_SEQUENCE: usize = 128;
/// Tokens per attention sequence below which vidi's CPU attention uses plain
/// loops (gemm's call overhead would outweigh a few hundred multiply-adds).
pub const SHORT_SEQUENCE: usize = kernels::SHORT;

/// Elements the widest activation of one forward pass may hold off the CPU
/// (256 MiB in f32, inside any adapter's `max_storage_buffer_binding_size`).
pub const ACTIVATION_BUDGET: usize = 1 << 26;

/// How many clips one forward pass on `device` takes when a clip has `tokens`
/// tokens and the widest layer `width` features: unbounded on the CPU; off it,
/// as many as keep each activation within [`ACTIVATION_BUDGET`] (at least one).
/// Larger batches run in pieces (their logits, or their gradients, summed).
pub fn clips_per_pass(device: &Device, tokens: usize, width: usize) -> usize {
    match route(device) {
        Route::Generic => (ACTIVATION_BUDGET / (tokens * width).max(1)).max(1),
        _ => usize::MAX,
    }
}

/// Whether vidi's CPU attention takes sequences of `len` tokens.
fn cpu_takes_sequence(len: usize) -> bool {
    !(SHORT_SEQUENCE..MIN_GEMM_SEQUENCE).contains(&len)
}

/// Whether a Linear layer over `x` takes vidi's gemm kernel in inference.
fn cpu_gemm(x: &Tensor<3>) -> bool {
    let [b, n, _] = x.dims();
    b * n >= MIN_GEMM_ROWS && route(&x.device()) == Route::CpuKernel
}

/// A Linear layer's forward pass.
///
/// # Shapes
/// x: `[batch, tokens, d_in]` -> `[batch, tokens, d_out]`
pub fn linear(l: &Linear, x: Tensor<3>) -> Tensor<3> {
    match route(&x.device()) {
        Route::CpuKernel if cpu_gemm(&x) => kernels::linear(l, &x, None).unwrap_or_else(|_| l.forward(x)),
        Route::CpuAutodiff => grad::linear(l, &x).unwrap_or_else(|| l.forward(x)),
        Route::Generic if autocasting(&x.device()) => full(linear_f16(l, x)),
        _ => l.forward(x),
    }
}

/// `l(x)` computed in f16 (the result left in f16).
fn linear_f16(l: &Linear, x: Tensor<3>) -> Tensor<3> {
    let bias = l.bias.as_ref().map(|b| half(b.val()));
    burn::tensor::module::linear(half(x), half(l.weight.val()), bias)
}

/// `act(l(x))`, the hidden layer of an MLP, whose result feeds the next
/// Linear layer's product: under [`autocast`] left in f16 (the activation
/// computed in f16, as PyTorch's autocast runs it in its input's type), so
/// that what autodiff keeps of the widest activation takes half the memory.
///
/// # Shapes
/// x: `[batch, tokens, d_in]` -> `[batch, tokens, d_out]`
pub fn linear_activation(l: &Linear, x: Tensor<3>, act: Activation) -> Tensor<3> {
    match autocasting(&x.device()) {
        true => activation(linear_f16(l, x), act),
        false => activation(linear(l, x), act),
    }
}

/// `residual + l(x)`, except in the first `skip` tokens of each batch, which
/// keep the residual alone. On the CPU kernel route one gemm starts from the
/// residual (taking its buffer over when nothing else holds it).
///
/// # Shapes
/// x: `[batch, tokens, d_in]`, residual: `[batch, tokens, d_out]` -> `[batch, tokens, d_out]`
pub fn linear_add(l: &Linear, x: Tensor<3>, residual: Tensor<3>, skip: usize) -> Tensor<3> {
    let residual = if cpu_gemm(&x) {
        match kernels::linear(l, &x, Some((residual, skip))) {
            Ok(out) => return out,
            Err(Some((residual, _))) => residual,
            Err(None) => unreachable!("kernels::linear hands back the residual it was given"),
        }
    } else {
        residual
    };
    let y = linear(l, x);
    if skip == 0 {
        return residual + y;
    }
    let n = y.dims()[1];
    let kept = residual.clone().narrow(1, 0, skip);
    Tensor::cat(vec![kept, residual.narrow(1, skip, n - skip) + y.narrow(1, skip, n - skip)], 1)
}

/// LayerNorm over the last dimension: `(x - mean) / sqrt(var + eps) * gamma + beta`.
///
/// # Shapes
/// x: `[batch, tokens, d]`, gamma and beta: `[d]` -> `[batch, tokens, d]`
pub fn layer_norm(x: Tensor<3>, gamma: Tensor<1>, beta: Tensor<1>, eps: f64) -> Tensor<3> {
    if route(&x.device()) == Route::CpuAutodiff {
        if let Some(y) = grad::layer_norm(&x, &gamma, &beta, eps) {
            return y;
        }
    }
    burn::tensor::module::layer_norm(x, gamma, Some(beta), eps)
}

/// The MLP activation of a `config.json` (`hidden_act`), as transformers' `ACT2FN` defines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU (erf): `gelu`, `gelu_python`.
    Gelu,
    /// The tanh approximation: `gelu_fast`, `gelu_new`, `gelu_pytorch_tanh`, `gelu_accurate`.
    GeluTanh,
    /// `quick_gelu`: `x * sigmoid(1.702 x)`.
    QuickGelu,
    /// `relu`.
    Relu,
    /// `relu6`: `min(max(x, 0), 6)`.
    Relu6,
    /// `silu` / `swish`: `x * sigmoid(x)`.
    Silu,
    /// `sigmoid`.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `linear`: the identity.
    Identity,
}

impl Activation {
    /// The activation a `hidden_act` name stands for; `None` for one vidi does not have.
    pub fn from_name(name: &str) -> Option<Activation> {
        Some(match name {
            "gelu" | "gelu_python" => Activation::Gelu,
            "gelu_fast" | "gelu_new" | "gelu_pytorch_tanh" | "gelu_accurate" => Activation::GeluTanh,
            "quick_gelu" => Activation::QuickGelu,
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "silu" | "swish" => Activation::Silu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "linear" => Activation::Identity,
            _ => return None,
        })
    }

    /// The names [`Activation::from_name`] takes, for messages.
    pub const NAMES: &'static str = "gelu, gelu_python, gelu_fast, gelu_new, gelu_pytorch_tanh, gelu_accurate, \
                                     quick_gelu, relu, relu6, silu, swish, sigmoid, tanh, linear";
}

/// The MLP activation: the GELUs by vidi's kernels on the CPU ([`gelu`]), the
/// others by Burn's tensor operations on every route.
pub fn activation(x: Tensor<3>, act: Activation) -> Tensor<3> {
    let x = match act {
        Activation::Gelu => return gelu(x, false),
        Activation::GeluTanh => return gelu(x, true),
        // A pace point in the MLP, forward and backward, as the GELUs have.
        _ if PACED.load(Ordering::Relaxed) && route(&x.device()) == Route::Generic => blocked::pace_point(x),
        _ => x,
    };
    match act {
        Activation::QuickGelu => x.clone() * activation::sigmoid(x.mul_scalar(1.702)),
        Activation::Relu => activation::relu(x),
        Activation::Relu6 => activation::relu(x).clamp_max(6.0),
        Activation::Silu => activation::silu(x),
        Activation::Sigmoid => activation::sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Identity | Activation::Gelu | Activation::GeluTanh => x,
    }
}

/// GELU, exact (`erf`) or the tanh approximation (`gelu_fast`, `gelu_new`).
fn gelu(x: Tensor<3>, tanh_approx: bool) -> Tensor<3> {
    let x = match route(&x.device()) {
        Route::CpuKernel => return kernels::gelu(x, tanh_approx),
        Route::CpuAutodiff => match grad::gelu(&x, tanh_approx) {
            Some(y) => return y,
            None => x,
        },
        // A pace point in the MLP, forward and backward: halfway through a layer.
        Route::Generic if PACED.load(Ordering::Relaxed) => blocked::pace_point(x),
        Route::Generic => x,
    };
    if tanh_approx {
        activation::gelu_approximate(x)
    } else if x.device().is_autodiff() {
        // Burn's GELU differentiates as the tanh approximation (with six-digit
        // constants) off the CPU: 1e-4 off in the gradients. Built from erf,
        // the recorded derivative is the exact one.
        x.clone() * x.div_scalar(std::f64::consts::SQRT_2).erf().add_scalar(1.0).mul_scalar(0.5)
    } else {
        activation::gelu(x)
    }
}

/// Training's dropout (PyTorch's `nn.Dropout`): each unit of `group`
/// consecutive values of `x` zeroed with probability `p` and the rest scaled
/// by `1 / (1 - p)`; `group` 1 is element-wise dropout, a whole sample's (or
/// sequence's) values is drop-path (stochastic depth). The mask depends on
/// `seed` and the values' positions alone ([`kernels::dropout_mask`], filled
/// on the host by vidi's kernel), so it is the same on every route and device
/// and a resumed run draws what the uninterrupted one drew. `p` 0 returns `x` itself.
///
/// # Shapes
/// x: any -> same
pub fn dropout<const D: usize>(x: Tensor<D>, p: f64, seed: u64, group: usize) -> Tensor<D> {
    if p <= 0.0 {
        return x;
    }
    let dims = x.dims();
    let mask = kernels::dropout_mask(dims.iter().product(), p, seed, group);
    let mask: Tensor<D> = Tensor::from_data(TensorData::new(mask, dims), &x.device());
    // In `x`'s float type (f16 under autocast).
    let mask = mask.cast(FloatDType::from(x.dtype()));
    x * mask
}

/// Training's random parts of one attention, where transformers puts them:
/// dropout of the attention probabilities (`attention_probs_dropout_prob`),
/// of the output projection's result (`hidden_dropout_prob`), and drop-path of
/// each sequence's whole output (TimeSformer's `drop_path_rate`), from `seed`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttentionDrop {
    /// Dropout of the attention probabilities.
    pub probs: f64,
    /// Dropout after the output projection.
    pub hidden: f64,
    /// Drop-path of each sequence's output.
    pub path: f64,
    /// The seed of the masks.
    pub seed: u64,
}

impl AttentionDrop {
    /// Whether anything is dropped.
    pub fn active(&self) -> bool {
        self.probs > 0.0 || self.hidden > 0.0 || self.path > 0.0
    }
}

/// Self-attention within each sequence of tokens that `groups` names, with
/// its output projection: the query, key and value projections of `x`,
/// `softmax(q k^T / sqrt(dh)) v` over each of `heads` column ranges, then `o`,
/// plus `residual` when given. Token 0 of [`Groups::Frames`] takes no part:
/// its attention output is zero (so its row is `o`'s bias, plus the residual).
///
/// On the CPU kernel route the kernel reads the tokens where they lie and the
/// residual add is folded into `o`'s product. Off it, `x` is gathered into
/// its sequences once, attended and projected there (the projections act on
/// each token alone, and the mean of [`Groups::Patches`]' token 0 commutes
/// with `o`), and put back once.
///
/// # Shapes
/// x, residual: `[batch, tokens, hidden]` -> `[batch, tokens, hidden]`
///
/// # Panics
/// If the tokens do not split into `groups` (models check the clip's shape before their forward pass).
pub fn self_attention(
    x: Tensor<3>,
    linears: [&Linear; 4],
    heads: usize,
    groups: Groups,
    residual: Option<Tensor<3>>,
) -> Tensor<3> {
    self_attention_dropped(x, linears, heads, groups, residual, None)
}

/// [`self_attention`] with training's random parts ([`AttentionDrop`]), off
/// the CPU kernel route whenever one is active: the dropouts and drop-path act
/// on each sequence's own output, before the mean of [`Groups::Patches`]' token 0.
///
/// # Shapes
/// x, residual: `[batch, tokens, hidden]` -> `[batch, tokens, hidden]`
pub fn self_attention_dropped(
    x: Tensor<3>,
    [q, k, v, o]: [&Linear; 4],
    heads: usize,
    groups: Groups,
    residual: Option<Tensor<3>>,
    drop: Option<AttentionDrop>,
) -> Tensor<3> {
    let [b, n, d] = x.dims();
    assert!(groups.fits(n), "{n} tokens do not split into {groups:?}");
    let (_, len) = groups.shape(n);
    let drop = drop.filter(AttentionDrop::active);
    let project = |x: Tensor<3>| (linear(q, x.clone()), linear(k, x.clone()), linear(v, x));
    if route(&x.device()) == Route::CpuKernel && cpu_takes_sequence(len) && drop.is_none() {
        let (q, k, v) = project(x);
        let ctx = kernels::attention(q, k, v, heads, groups);
        return match residual {
            Some(r) => linear_add(o, ctx, r, 0),
            None => linear(o, ctx),
        };
    }
    // Token 0's row for Groups::Frames: `o` of a zero attention output.
    let device = x.device();
    pace(&device);
    let first = || linear(o, Tensor::zeros([b, 1, d], &device));
    let out = by_sequences(x, groups, &first, &|x| {
        let (q, k, v) = project(x);
        let Some(drop) = drop else { return linear(o, sequences_attention(q, k, v, heads)) };
        let ctx = if drop.probs > 0.0 {
            dropped_attention(q, k, v, heads, drop.probs, mix(drop.seed, 1))
        } else {
            sequences_attention(q, k, v, heads)
        };
        let y = dropout(linear(o, ctx), drop.hidden, mix(drop.seed, 2), 1);
        let [_, len, dout] = y.dims();
        dropout(y, drop.path, mix(drop.seed, 3), len * dout)
    });
    match residual {
        Some(r) => r + out,
        None => out,
    }
}

/// V-JEPA 2's 3-D rotary position embeddings, as tables over the tokens:
/// each head's dimensions cut into three parts of `2 * ((dh / 3) / 2)`
/// (depth, height, width; the rest pass unrotated), each part rotated by its
/// position with `omega_j = 1 / 10000^(j / (part / 2))`, pairs `(x[2i],
/// x[2i+1])` turned to `(-x[2i+1], x[2i])` and the sines and cosines repeated
/// (not interleaved) over the part, as transformers' `rotate_queries_or_keys`.
#[derive(Clone, Debug)]
pub struct Rope {
    /// Cosines `[tokens, heads * dh]` (1 where unrotated).
    pub cos: Tensor<2>,
    /// Sines `[tokens, heads * dh]` (0 where unrotated).
    pub sin: Tensor<2>,
}

impl Rope {
    /// The tables for `tokens` tokens in time, row, column order on a `grid x grid`
    /// grid of patches per frame, `heads` heads of `dh` (even) dimensions.
    pub fn new(tokens: usize, grid: usize, heads: usize, dh: usize, device: &Device) -> Rope {
        let part = 2 * ((dh / 3) / 2);
        let half = (part / 2).max(1);
        // In f32, as transformers computes them.
        let omega: Vec<f32> = (0..half).map(|j| 1.0 / 10000f32.powf(j as f32 / half as f32)).collect();
        let (mut cos, mut sin) = (Vec::with_capacity(tokens * heads * dh), Vec::with_capacity(tokens * heads * dh));
        for i in 0..tokens {
            let per_frame = grid * grid;
            let pos = [i / per_frame, (i % per_frame) / grid, i % grid];
            for _ in 0..heads {
                for k in 0..dh {
                    let section = if part == 0 { 3 } else { k / part };
                    if section < 3 {
                        let angle = pos[section] as f32 * omega[(k % part) % half];
                        cos.push(angle.cos());
                        sin.push(angle.sin());
                    } else {
                        cos.push(1.0);
                        sin.push(0.0);
                    }
                }
            }
        }
        let table = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [tokens, heads * dh]), device);
        Rope { cos: table(cos), sin: table(sin) }
    }

    /// `x` rotated: `x * cos + pairs(x) * sin`.
    ///
    /// # Shapes
    /// x: `[batch, tokens, heads * dh]` -> same
    pub fn apply(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let pairs = x.clone().reshape([b, n, d / 2, 2]);
        let turned =
            Tensor::cat(vec![pairs.clone().narrow(3, 1, 1).neg(), pairs.narrow(3, 0, 1)], 3).reshape([b, n, d]);
        x * self.cos.clone().unsqueeze::<3>() + turned * self.sin.clone().unsqueeze::<3>()
    }
}

/// Self-attention over all tokens with rotary position embeddings on the
/// queries and keys (V-JEPA 2's encoder), its output projection `o`, and
/// `residual` added; with training's random parts ([`AttentionDrop`]: dropout
/// of the probabilities, drop-path of each sample's output).
///
/// # Shapes
/// x, residual: `[batch, tokens, hidden]` -> `[batch, tokens, hidden]`
pub fn rope_self_attention(
    x: Tensor<3>,
    [q, k, v, o]: [&Linear; 4],
    heads: usize,
    rope: &Rope,
    residual: Tensor<3>,
    drop: Option<AttentionDrop>,
) -> Tensor<3> {
    let drop = drop.filter(AttentionDrop::active);
    let (qx, kx, vx) = (linear(q, x.clone()), linear(k, x.clone()), linear(v, x));
    let (qx, kx) = (rope.apply(qx), rope.apply(kx));
    let n = qx.dims()[1];
    if route(&qx.device()) == Route::CpuKernel && cpu_takes_sequence(n) && drop.is_none() {
        return linear_add(o, kernels::attention(qx, kx, vx, heads, Groups::All), residual, 0);
    }
    pace(&qx.device());
    let Some(drop) = drop else { return residual + linear(o, sequences_attention(qx, kx, vx, heads)) };
    let ctx = if drop.probs > 0.0 {
        dropped_attention(qx, kx, vx, heads, drop.probs, mix(drop.seed, 1))
    } else {
        sequences_attention(qx, kx, vx, heads)
    };
    let y = dropout(linear(o, ctx), drop.hidden, mix(drop.seed, 2), 1);
    let [_, len, dout] = y.dims();
    residual + dropout(y, drop.path, mix(drop.seed, 3), len * dout)
}

/// Attention of a few queries to a sequence's keys and values (V-JEPA 2's
/// pooler: one learned query): `softmax(q k^T / sqrt(dh)) v` per head, with
/// dropout `p` of the probabilities from `seed` in training. By Burn's tensor
/// operations on every route (the scores are `queries x tokens`, small).
///
/// # Shapes
/// q: `[batch, queries, heads * dh]`, k, v: `[batch, tokens, heads * dh]` -> `[batch, queries, heads * dh]`
pub fn cross_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize, drop: Option<(f64, u64)>) -> Tensor<3> {
    let dh = q.dims()[2] / heads;
    scaled_cross_attention(q, k, v, heads, 1.0 / (dh as f64).sqrt(), drop)
}

/// [`cross_attention`] with the scores scaled by `scale` instead of `1 / sqrt(dh)`
/// (VideoPrism's pooling head scales its query itself and passes 1).
///
/// # Shapes
/// q: `[batch, queries, heads * dh]`, k, v: `[batch, tokens, heads * dh]` -> `[batch, queries, heads * dh]`
pub fn scaled_cross_attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
    scale: f64,
    drop: Option<(f64, u64)>,
) -> Tensor<3> {
    let ([b, m, d], n) = (q.dims(), k.dims()[1]);
    let dh = d / heads;
    let q = q.reshape([b, m, heads, dh]).swap_dims(1, 2);
    let split = |t: Tensor<3>| t.reshape([b, n, heads, dh]).swap_dims(1, 2);
    let scores = matmul(q, split(k).swap_dims(2, 3));
    let scores = if scale == 1.0 { scores } else { scores.mul_scalar(scale) };
    let mut probs = activation::softmax(scores, 3);
    if let Some((p, seed)) = drop {
        probs = dropout(probs, p, seed, 1);
    }
    matmul(probs, split(v)).swap_dims(1, 2).reshape([b, m, d])
}

/// Self-attention over each batch entry's tokens with soft-capped logits
/// (VideoPrism): `softmax(cap * tanh(q k^T / sqrt(dh) / cap)) v` per head
/// (`cap` 0: no cap), its output projection `o`, and `residual` added; in
/// training [`AttentionDrop`]'s dropout of the probabilities and of `o`'s
/// output (no drop-path). In inference on the CPU, vidi's attention kernel
/// with the cap applied to each block of scores before its softmax; elsewhere
/// Burn's tensor operations, the scores materialised.
///
/// # Shapes
/// x, residual: `[batch, tokens, hidden]` -> `[batch, tokens, hidden]`
pub fn capped_self_attention(
    x: Tensor<3>,
    [q, k, v, o]: [&Linear; 4],
    heads: usize,
    cap: f64,
    residual: Tensor<3>,
    drop: Option<AttentionDrop>,
) -> Tensor<3> {
    let drop = drop.filter(AttentionDrop::active);
    let [b, n, _] = x.dims();
    let kernel = route(&x.device()) == Route::CpuKernel && cpu_takes_sequence(n) && drop.is_none();
    if !kernel {
        pace(&x.device());
    }
    let (qx, kx, vx) = (linear(q, x.clone()), linear(k, x.clone()), linear(v, x));
    if kernel {
        return linear_add(o, kernels::capped_attention(qx, kx, vx, heads, cap as f32), residual, 0);
    }
    let d = qx.dims()[2];
    let dh = d / heads;
    let split = |t: Tensor<3>| t.reshape([b, n, heads, dh]).swap_dims(1, 2); // [b, heads, n, dh]
    let scores = matmul(split(qx), split(kx).swap_dims(2, 3)).mul_scalar(1.0 / (dh as f64).sqrt());
    let scores = if cap > 0.0 { scores.div_scalar(cap).tanh().mul_scalar(cap) } else { scores };
    let mut probs = activation::softmax(scores, 3);
    if let Some(dr) = drop.filter(|d| d.probs > 0.0) {
        probs = dropout(probs, dr.probs, mix(dr.seed, 1), 1);
    }
    let ctx = matmul(probs, split(vx)).swap_dims(1, 2).reshape([b, n, d]);
    match drop {
        None => linear_add(o, ctx, residual, 0),
        Some(dr) => residual + dropout(linear(o, ctx), dr.hidden, mix(dr.seed, 2), 1),
    }
}

/// `attend` over the sequences of `groups`: `x`'s tokens gathered into
/// `[sequences, len, d]` with tensor ops, and `attend`'s outputs put back in
/// token order (token 0 of [`Groups::Frames`] gets `first()`; of
/// [`Groups::Patches`], the mean of its outputs over the frames).
fn by_sequences(
    x: Tensor<3>,
    groups: Groups,
    first: &dyn Fn() -> Tensor<3>,
    attend: &dyn Fn(Tensor<3>) -> Tensor<3>,
) -> Tensor<3> {
    let [b, n, d] = x.dims();
    match groups {
        Groups::All => attend(x),
        Groups::Frames(f) => {
            let p = (n - 1) / f;
            let ctx = attend(x.narrow(1, 1, n - 1).reshape([b * p, f, d]));
            let dout = ctx.dims()[2];
            let ctx = ctx.reshape([b, p * f, dout]);
            Tensor::cat(vec![first(), ctx], 1)
        }
        Groups::Patches(f) => {
            let p = (n - 1) / f;
            let first = x.clone().narrow(1, 0, 1).repeat_dim(1, f).reshape([b * f, 1, d]);
            let rest = x.narrow(1, 1, n - 1).reshape([b, p, f, d]).swap_dims(1, 2).reshape([b * f, p, d]);
            let out = attend(Tensor::cat(vec![first, rest], 1)); // [b * f, 1 + p, dout]
            let dout = out.dims()[2];
            let first = out.clone().narrow(1, 0, 1).reshape([b, f, dout]).mean_dim(1);
            let rest = out.narrow(1, 1, p).reshape([b, f, p, dout]).swap_dims(1, 2).reshape([b, p * f, dout]);
            Tensor::cat(vec![first, rest], 1)
        }
    }
}

/// Attention within each batch entry (one sequence each), off the CPU kernel
/// route; under [`autocast`] in f16, its result too (for the output projection).
fn sequences_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    if route(&q.device()) == Route::CpuAutodiff && cpu_takes_sequence(q.dims()[1]) {
        if let Some(ctx) = grad::attention(&q, &k, &v, heads) {
            return ctx;
        }
    }
    if autocasting(&q.device()) {
        // As PyTorch's scaled_dot_product_attention under autocast: all of it in
        // f16, its result too (the output projection's product takes it as it is).
        return blocked::attention(half(q), half(k), half(v), heads);
    }
    if route(&q.device()) == Route::Generic {
        return blocked::attention(q, k, v, heads);
    }
    heads_attention(q, k, v, heads)
}

/// Attention with dropout of its probabilities (training, `p` > 0):
/// `(dropout(softmax(q k^T / sqrt(dh)))) v` with the probabilities
/// materialised by Burn's tensor operations (on every route: the fused
/// kernels keep no probabilities to drop).
///
/// # Shapes
/// q, k, v: `[batch, tokens, heads * dh]` -> `[batch, tokens, heads * dh]`
fn dropped_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize, p: f64, seed: u64) -> Tensor<3> {
    let [b, n, d] = q.dims();
    let dh = d / heads;
    let split = |t: Tensor<3>| t.reshape([b, n, heads, dh]).swap_dims(1, 2); // [b, heads, n, dh]
    let scores = matmul(split(q), split(k).swap_dims(2, 3)).mul_scalar(1.0 / (dh as f64).sqrt());
    let probs = dropout(activation::softmax(scores, 3), p, seed, 1);
    matmul(probs, split(v)).swap_dims(1, 2).reshape([b, n, d])
}

/// `softmax(q k^T / sqrt(dh)) v` by Burn's attention, each of `heads` column
/// ranges a head: the generic form (and the reference the kernels are tested against).
///
/// # Shapes
/// q, k, v: `[batch, tokens, heads * dh]` -> `[batch, tokens, heads * dh]`
pub fn heads_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, n, d] = q.dims();
    let split = |t: Tensor<3>| t.reshape([b, n, heads, d / heads]).swap_dims(1, 2); // [b, heads, n, dh]
    let ctx = burn::tensor::module::attention(split(q), split(k), split(v), None, None, Default::default());
    ctx.swap_dims(1, 2).reshape([b, n, d])
}

/// One AdamW step of one parameter (flattened), with its moments (zeros when
/// `None`): returns the new parameter and moments. On the CPU kernel route one
/// pass over the four buffers; elsewhere the same arithmetic as tensor ops.
/// The gradient is scaled by `k.clip` and, where given, by `clip_by` (a
/// one-element tensor: the clipping coefficient left on the device).
pub fn adamw(
    p: Tensor<1>,
    g: Tensor<1>,
    moments: Option<(Tensor<1>, Tensor<1>)>,
    k: &AdamWStep,
    clip_by: Option<&Tensor<1>>,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let g = match clip_by {
        // The clipping coefficient computed on the device (one element), so that
        // the step need not read the gradient norm back first.
        Some(c) => {
            let n = g.dims()[0];
            g * c.clone().expand([n])
        }
        None => g,
    };
    if route(&p.device()) == Route::CpuKernel {
        return kernels::adamw(p, g, moments, k);
    }
    // Every other parameter: an optimizer step queues a few kernels for each.
    static UPDATES: AtomicUsize = AtomicUsize::new(0);
    if UPDATES.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
        pace(&p.device());
    }
    let g = if k.clip != 1.0 { g.mul_scalar(k.clip) } else { g };
    let p = if k.decay != 1.0 { p.mul_scalar(k.decay) } else { p };
    let (m, v) = moments.unwrap_or_else(|| (g.zeros_like(), g.zeros_like()));
    let m = m.mul_scalar(k.beta1) + g.clone().mul_scalar(k.one_minus_beta1);
    let v = v.mul_scalar(k.beta2) + (g.clone() * g).mul_scalar(k.one_minus_beta2);
    let denom = v.clone().sqrt().div_scalar(k.bc2_sqrt).add_scalar(k.eps);
    (p - (m.clone() / denom).mul_scalar(k.step_size), m, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burn's device equality ignores autodiff: inference must not take the
    /// autodiff operations, nor training the inference kernels.
    #[test]
    fn each_cpu_device_takes_its_own_route() {
        assert_eq!(route(&Device::flex()), Route::CpuKernel);
        assert_eq!(route(&Device::flex().autodiff()), Route::CpuAutodiff);
    }

    /// The grouped self-attentions off the CPU kernel route (tokens gathered
    /// with tensor ops, then Burn's attention, as on wgpu; or the autodiff
    /// operations, as in training) give what the kernel gives on the tokens
    /// as they lie, with and without a residual.
    #[test]
    fn grouped_attention_is_the_same_on_every_route() {
        use burn::module::Param;
        use burn::tensor::Distribution;
        let (b, f, p, heads, dh) = (2, 4, 5, 2, 8);
        let (n, d) = (1 + p * f, heads * dh);
        let cpu = Device::flex();
        let ad = cpu.clone().autodiff();
        let random = |shape: [usize; 2]| Tensor::<2>::random(shape, Distribution::Normal(0.0, 0.3), &cpu);
        let weights: Vec<_> = (0..4).map(|_| (random([d, d]), random([1, d]).reshape([d]))).collect();
        let linears = |device: &Device| -> Vec<Linear> {
            weights
                .iter()
                .map(|(w, b)| Linear {
                    weight: Param::from_tensor(Tensor::from_data(w.to_data(), device)),
                    bias: Some(Param::from_tensor(Tensor::from_data(b.to_data(), device))),
                })
                .collect()
        };
        let (c, a) = (linears(&cpu), linears(&ad));
        let x = Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &cpu);
        let r = Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &cpu);
        let on_ad = |t: &Tensor<3>| Tensor::<3>::from_data(t.to_data(), &ad);
        for groups in [Groups::All, Groups::Frames(f), Groups::Patches(f)] {
            for residual in [false, true] {
                let res = |t: &Tensor<3>| residual.then(|| t.clone());
                let want = self_attention(x.clone(), [&c[0], &c[1], &c[2], &c[3]], heads, groups, res(&r));
                let first = || c[3].forward(Tensor::zeros([b, 1, d], &cpu));
                let burn = by_sequences(x.clone(), groups, &first, &|x| {
                    let [q, k, v] = [&c[0], &c[1], &c[2]].map(|l| l.forward(x.clone()));
                    c[3].forward(heads_attention(q, k, v, heads))
                });
                let burn = if residual { burn + r.clone() } else { burn };
                let ad_r = res(&r).map(|t| on_ad(&t));
                let trained = self_attention(on_ad(&x), [&a[0], &a[1], &a[2], &a[3]], heads, groups, ad_r).inner();
                for (name, got) in [("Burn's", burn), ("autodiff", trained)] {
                    let diff: f32 = (got - want.clone()).abs().max().into_scalar();
                    assert!(diff < 1e-5, "{groups:?}, residual {residual}, {name}: max |diff| {diff}");
                }
            }
        }
    }
}
