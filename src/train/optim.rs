//! The Trainer's optimisation step, exactly: gradients summed over the
//! micro-batches of one step, clipped by their global L2 norm
//! (`clip_grad_norm_`), then `torch.optim.AdamW` with the linear warm-up /
//! linear decay schedule (`get_linear_schedule_with_warmup`).
//!
//! Burn's own clipping works per tensor, not on the global norm, so the step
//! is written here against Burn's module visitor and mapper. Moments live on
//! the device as flat tensors keyed by the parameter's path, and are saved
//! and restored exactly for `--resume`.
//!
//! Mixed precision (`--precision f16`) adds dynamic loss scaling, as
//! `torch.amp.GradScaler` does it with its defaults ([`LossScaler`]): the
//! loss is multiplied by the scale before the backward pass, the gradients
//! divided by it before clipping, and a step whose gradients are not finite
//! is skipped (no update, no AdamW step counted) with the scale halved.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Gradients, Tensor};

use crate::backend::{ops, to_device, to_host, HostTensor, Scalar};
use crate::model::weights;
use crate::model::ModelError;

/// The learning rate at optimizer step `step` (0-based, as the scheduler sees
/// it): linear warm-up from 0 over `warmup` steps, then linear decay to 0 at `total`.
pub fn linear_schedule(base_lr: f64, step: u64, warmup: u64, total: u64) -> f64 {
    if step < warmup {
        return base_lr * step as f64 / warmup.max(1) as f64;
    }
    let left = total.saturating_sub(step) as f64;
    base_lr * (left / total.saturating_sub(warmup).max(1) as f64).max(0.0)
}

/// Warm-up steps for a ratio of the total (the Trainer rounds up).
pub fn warmup_steps(total: u64, ratio: f64) -> u64 {
    (total as f64 * ratio).ceil() as u64
}

/// AdamW hyper-parameters (PyTorch's names and defaults; the Trainer's weight decay 0).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    /// beta1.
    pub beta1: f64,
    /// beta2.
    pub beta2: f64,
    /// eps.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clipping threshold (0 = none).
    pub max_grad_norm: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, max_grad_norm: 1.0 }
    }
}

/// Dynamic loss scaling of mixed-precision training, with
/// `torch.amp.GradScaler`'s defaults: start at 2^16, halve on a step whose
/// gradients overflow (that step skipped), double after 2000 steps in a row without one.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossScaler {
    /// The factor the loss is multiplied by before its backward pass.
    pub scale: f64,
    /// Finite steps since the scale last changed.
    pub good_steps: u64,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler { scale: LossScaler::INIT, good_steps: 0 }
    }
}

impl LossScaler {
    /// The first scale (`init_scale`).
    pub const INIT: f64 = 65536.0;
    /// Finite steps in a row before the scale doubles (`growth_interval`).
    pub const GROWTH_INTERVAL: u64 = 2000;

    /// After a step: finite gradients count toward growth; others halve the scale.
    pub fn update(&mut self, finite: bool) {
        if !finite {
            self.scale *= 0.5;
            self.good_steps = 0;
            return;
        }
        self.good_steps += 1;
        if self.good_steps == Self::GROWTH_INTERVAL {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
    }
}

/// Gradients of one optimizer step, summed over its micro-batches, by parameter path.
#[derive(Default)]
pub struct GradAccumulator {
    grads: BTreeMap<String, Tensor<1>>,
    /// Mixed precision's loss scale: the gradients are this many times the true ones.
    loss_scale: Option<f64>,
}

/// Tracks the `a.b.c` path of the parameter being visited, with its position
/// (so that two parameters can never share a key).
#[derive(Default)]
struct PathTracker {
    stack: Vec<String>,
    index: usize,
}

impl PathTracker {
    fn enter(&mut self, name: &str) {
        self.stack.push(name.to_string());
    }
    fn exit(&mut self) {
        self.stack.pop();
    }
    fn next_key(&mut self) -> String {
        let key = format!("{:04}.{}", self.index, self.stack.join("."));
        self.index += 1;
        key
    }
}

struct Collect<'a> {
    grads: &'a Gradients,
    acc: &'a mut BTreeMap<String, Tensor<1>>,
    path: PathTracker,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let key = self.path.next_key();
        let Some(g) = param.val().grad(self.grads) else { return };
        let n = g.shape().num_elements();
        let g = g.reshape([n]);
        let sum = match self.acc.remove(&key) {
            Some(prev) => prev + g,
            None => g,
        };
        self.acc.insert(key, sum);
    }
}

impl GradAccumulator {
    /// Adds the parameter gradients of one backward pass.
    pub fn add<M: Module>(&mut self, module: &M, grads: &Gradients) {
        let mut v = Collect { grads, acc: &mut self.grads, path: PathTracker::default() };
        module.visit(&mut v);
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// An empty accumulator: for an f32 step (`None`, as `default()`), or for
    /// a mixed-precision step at loss scale `Some(scale)`, whose forward passes
    /// run under [`crate::backend::ops::autocast`] and whose losses are
    /// multiplied by the scale before the backward pass ([`crate::train::accumulate`]).
    pub fn new(loss_scale: Option<f64>) -> GradAccumulator {
        GradAccumulator { grads: BTreeMap::new(), loss_scale }
    }

    /// The loss scale of a mixed-precision step; `None` in f32.
    pub fn loss_scale(&self) -> Option<f64> {
        self.loss_scale
    }
}

/// AdamW with its state.
pub struct AdamW {
    /// Hyper-parameters.
    pub config: AdamWConfig,
    /// Optimizer steps taken (PyTorch's per-parameter `step`, equal for all).
    pub steps: u64,
    moments: BTreeMap<String, (Tensor<1>, Tensor<1>)>,
}

struct Update<'a> {
    opt: &'a mut AdamW,
    grads: BTreeMap<String, Tensor<1>>,
    lr: f64,
    clip: f64,
    /// The clipping coefficient, left on the device (off the CPU).
    clip_by: Option<Tensor<1>>,
    path: PathTracker,
}

impl ModuleMapper for Update<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let key = self.path.next_key();
        let Some(g) = self.grads.remove(&key) else { return param };
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let c = &self.opt.config;
        let t = self.opt.steps as i32;
        let p = tensor.inner().reshape([n]);
        // The Trainer's parameter groups: no decay for biases and LayerNorm weights.
        let no_decay = [".bias", ".gamma", ".beta"].iter().any(|s| key.ends_with(s));
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let k = ops::AdamWStep {
            clip: self.clip as f32,
            decay: (1.0 - self.lr * if no_decay { 0.0 } else { c.weight_decay }) as f32,
            beta1: c.beta1 as f32,
            beta2: c.beta2 as f32,
            one_minus_beta1: (1.0 - c.beta1) as f32,
            one_minus_beta2: (1.0 - c.beta2) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            eps: c.eps as f32,
            step_size: (self.lr / bc1) as f32,
        };
        let moments = self.opt.moments.remove(&key);
        let (p, m, v) = ops::adamw(p, g, moments, &k, self.clip_by.as_ref());
        self.opt.moments.insert(key, (m, v));
        let mut updated = Tensor::from_inner(p.reshape(shape));
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// What one optimizer step did.
#[derive(Clone)]
pub struct StepInfo {
    /// Global gradient norm before clipping: read on the CPU, left on the
    /// device elsewhere (read it for the log only, [`Scalar::value`]).
    pub grad_norm: Scalar,
    /// Learning rate used.
    pub lr: f64,
    /// Whether the step was skipped: mixed precision's gradients were not
    /// finite (the parameters, moments and AdamW step count are unchanged).
    pub skipped: bool,
}

impl AdamW {
    /// A fresh optimizer.
    pub fn new(config: AdamWConfig) -> AdamW {
        AdamW { config, steps: 0, moments: BTreeMap::new() }
    }

    /// Clips `acc` by its global norm and applies one AdamW step at `lr`.
    /// A mixed-precision step ([`GradAccumulator::new`] with a scale) first divides the
    /// gradients by the loss scale, and is skipped when they are not finite:
    /// that takes one read of their squared norm from the device, every step
    /// (as `GradScaler.step` reads its `found_inf`).
    pub fn step<M: Module>(&mut self, module: M, acc: GradAccumulator, lr: f64) -> (M, StepInfo) {
        let GradAccumulator { grads, loss_scale } = acc;
        let mut sq: Option<Tensor<1>> = None;
        for (i, g) in grads.values().enumerate() {
            if i % 4 == 3 {
                crate::backend::ops::pace(&g.device());
            }
            let s = (g.clone() * g.clone()).sum();
            sq = Some(match sq {
                Some(a) => a + s,
                None => s,
            });
        }
        let mut sq = sq.map(Scalar::of);
        if loss_scale.is_some() {
            // Mixed precision reads the squared norm (one wait for the device): a
            // step whose gradients overflowed is skipped.
            let v = sq.as_ref().map_or(0.0, Scalar::value);
            if !v.is_finite() {
                return (module, StepInfo { grad_norm: Scalar::Host(f64::INFINITY), lr, skipped: true });
            }
            sq = sq.map(|_| Scalar::Host(v));
        }
        let unscale = loss_scale.map_or(1.0, |s| 1.0 / s);
        // clip_grad_norm_: scale by max_norm / (norm + 1e-6), clamped to at most 1.
        let max_norm = self.config.max_grad_norm;
        let (grad_norm, clip, clip_by) = match sq {
            None => (Scalar::Host(0.0), 1.0, None),
            Some(Scalar::Host(sq)) => {
                let norm = sq.sqrt() * unscale;
                let clip = if max_norm > 0.0 { (max_norm / (norm + 1e-6)).min(1.0) } else { 1.0 };
                (Scalar::Host(norm), clip * unscale, None)
            }
            // Off the CPU the norm and the coefficient stay on the device: no read.
            Some(Scalar::Device(sq)) => {
                let norm = sq.sqrt();
                let by = (max_norm > 0.0)
                    .then(|| norm.clone().add_scalar(1e-6).recip().mul_scalar(max_norm as f32).clamp_max(1.0));
                (Scalar::Device(norm), 1.0, by)
            }
        };
        self.steps += 1;
        let mut u = Update { opt: self, grads, lr, clip, clip_by, path: PathTracker::default() };
        let module = module.map(&mut u);
        (module, StepInfo { grad_norm, lr, skipped: false })
    }

    /// Writes the moments (`exp_avg.KEY`, `exp_avg_sq.KEY`) to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let mut out = BTreeMap::new();
        for (k, (m, v)) in &self.moments {
            out.insert(format!("exp_avg.{k}"), to_host(m.clone()));
            out.insert(format!("exp_avg_sq.{k}"), to_host(v.clone()));
        }
        weights::write_safetensors(path, &out)
    }

    /// Reads the moments written by [`AdamW::save`]; `steps` comes from the trainer state.
    pub fn load(config: AdamWConfig, steps: u64, path: &Path, device: &Device) -> Result<AdamW, ModelError> {
        let map = weights::read_safetensors(path)?;
        let mut m: BTreeMap<String, HostTensor> = BTreeMap::new();
        let mut v: BTreeMap<String, HostTensor> = BTreeMap::new();
        for (k, t) in map {
            if let Some(key) = k.strip_prefix("exp_avg_sq.") {
                v.insert(key.to_string(), t);
            } else if let Some(key) = k.strip_prefix("exp_avg.") {
                m.insert(key.to_string(), t);
            }
        }
        let mut moments = BTreeMap::new();
        for (k, mt) in m {
            let Some(vt) = v.remove(&k) else {
                return Err(ModelError::BadCheckpoint {
                    path: path.into(),
                    reason: format!("optimizer state '{k}' has exp_avg but no exp_avg_sq"),
                });
            };
            moments.insert(k, (to_device(mt, device), to_device(vt, device)));
        }
        Ok(AdamW { config, steps, moments })
    }
}

#[cfg(test)]
mod tests {
    use super::LossScaler;

    /// `torch.amp.GradScaler(init_scale=2.**16, growth_factor=2.0,
    /// backoff_factor=0.5, growth_interval=2000)`, its defaults: halved by a
    /// step that overflows (which restarts the count), doubled by the 2000th
    /// finite step in a row.
    #[test]
    fn the_loss_scale_moves_as_gradscalers_defaults() {
        let mut s = LossScaler::default();
        assert_eq!(s.scale, 65536.0);
        s.update(false);
        assert_eq!(s.scale, 32768.0);
        for _ in 0..1999 {
            s.update(true);
        }
        assert_eq!(s.scale, 32768.0);
        s.update(false);
        for _ in 0..1999 {
            s.update(true);
        }
        assert_eq!((s.scale, s.good_steps), (16384.0, 1999));
        s.update(true);
        assert_eq!((s.scale, s.good_steps), (32768.0, 0));
    }
}
