//! The wgpu path, on the software adapter (lavapipe) CI has, or on a GPU where
//! there is one: gradients against finite differences, three optimizer steps
//! against PyTorch, `vidi classify` against the CPU, and a training step's
//! device memory against the number of tokens. (Forward parity with
//! transformers' logits is in `classify`.)

use std::path::Path;
use std::process::Command;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use vidi::backend::ops::{self_attention, Groups};
use vidi::backend::DeviceChoice;

use crate::{clip, fixtures, max_abs_diff, read_tensor};

/// The wgpu device `--device gpu` takes (the software adapter on CI).
fn wgpu() -> Device {
    vidi::backend::select(DeviceChoice::Gpu).expect("a wgpu adapter (lavapipe on CI: mesa-vulkan-drivers)").device
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Self-attention over every grouping, with its projections, as the models
/// call it: gradients of the input and of the query weight by the autodiff
/// operation on wgpu against central differences of the loss (each forward
/// pass on wgpu too), and against the CPU's own backward pass.
///
/// Short sequences (one block of queries) with every grouping, and one long
/// enough for three blocks.
#[test]
fn attention_gradients_on_wgpu_match_finite_differences() {
    let (f, p) = (4, 9);
    check_attention_gradients(2, 1 + p * f, &[Groups::All, Groups::Frames(f), Groups::Patches(f)]);
    let n = 2 * vidi::backend::blocked::QUERY_BLOCK + 6;
    check_attention_gradients(1, n, &[Groups::All]);
}

fn check_attention_gradients(b: usize, n: usize, groupings: &[Groups]) {
    let gpu = wgpu();
    let ad = gpu.clone().autodiff();
    let cpu_ad = vidi::backend::cpu().device.autodiff();
    let (heads, dh) = (2, 4);
    let d = heads * dh;
    let host = Device::flex();
    let random = |shape: Vec<usize>, sd: f64| {
        Tensor::<1>::random([shape.iter().product::<usize>()], Distribution::Normal(0.0, sd), &host)
    };
    let weights: Vec<(Vec<f32>, Vec<f32>)> =
        (0..4).map(|_| (values(random(vec![d * d], 0.4)), values(random(vec![d], 0.1)))).collect();
    let x0 = values(random(vec![b * n * d], 1.0));
    let w_out = values(random(vec![b * n * d], 1.0));
    let linears = |device: &Device, wq: &[f32]| -> Vec<Linear> {
        weights
            .iter()
            .enumerate()
            .map(|(i, (w, bias))| Linear {
                weight: Param::from_tensor(Tensor::from_data(
                    TensorData::new(if i == 0 { wq.to_vec() } else { w.clone() }, [d, d]),
                    device,
                )),
                bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias.clone(), [d]), device))),
            })
            .collect()
    };
    // The loss: sum(self_attention(x, W_q, ...) * w_out); its gradients for x and W_q on autodiff devices.
    let run = |device: &Device, x: &[f32], wq: &[f32], groups: Groups| -> (f64, Option<(Vec<f32>, Vec<f32>)>) {
        let l = linears(device, wq);
        let xt = Tensor::<3>::from_data(TensorData::new(x.to_vec(), [b, n, d]), device);
        let xt = if device.is_autodiff() { xt.require_grad() } else { xt };
        let w = Tensor::<3>::from_data(TensorData::new(w_out.clone(), [b, n, d]), device);
        let out = self_attention(xt.clone(), [&l[0], &l[1], &l[2], &l[3]], heads, groups, Some(xt.clone()));
        let loss = (out * w).sum();
        let value = loss.clone().into_scalar::<f32>() as f64;
        if !device.is_autodiff() {
            return (value, None);
        }
        let grads = loss.backward();
        let gx = xt.grad(&grads).map(values).expect("a gradient for x");
        let gw = l[0].weight.val().grad(&grads).map(values).expect("a gradient for W_q");
        (value, Some((gx, gw)))
    };
    let wq0 = weights[0].0.clone();
    for &groups in groupings {
        let (_, g) = run(&ad, &x0, &wq0, groups);
        let (gx, gw) = g.unwrap();
        let (_, g) = run(&cpu_ad, &x0, &wq0, groups);
        let (cx, cw) = g.unwrap();
        let diff = crate::max_abs_diff(&gx, &cx).max(crate::max_abs_diff(&gw, &cw));
        assert!(diff <= 1e-4, "{groups:?}: wgpu's gradients differ from the CPU's by {diff}");
        let eps = 1e-2f32;
        for (which, i) in
            [(0, 0), (0, 7), (0, b * n * d / 2 + 3), (0, b * n * d - 1), (1, 0), (1, d + 5), (1, d * d - 1)]
        {
            let (mut x, mut wq) = (x0.clone(), wq0.clone());
            let bump = |x: &mut Vec<f32>, wq: &mut Vec<f32>, by: f32| {
                if which == 0 {
                    x[i] += by
                } else {
                    wq[i] += by
                }
            };
            bump(&mut x, &mut wq, eps);
            let (up, _) = run(&gpu, &x, &wq, groups);
            bump(&mut x, &mut wq, -2.0 * eps);
            let (down, _) = run(&gpu, &x, &wq, groups);
            let numeric = (up - down) / (2.0 * eps as f64);
            let analytic = if which == 0 { gx[i] } else { gw[i] } as f64;
            assert!(
                (numeric - analytic).abs() <= 5e-3 + 2e-2 * numeric.abs(),
                "{groups:?} {} [{i}]: autodiff {analytic}, finite differences {numeric}",
                if which == 0 { "x" } else { "W_q" }
            );
        }
    }
}

/// Three Trainer steps on wgpu give PyTorch's weights within 1e-5 (the CPU test's fixture).
#[test]
fn optimizer_steps_on_wgpu_match_pytorch() {
    crate::train::optimizer_steps_match_pytorch_on(&wgpu().autodiff());
}

fn vidi_json(args: &[&str]) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_vidi")).args(args).env_remove("VIDI_DEVICE").output().expect("run vidi");
    assert!(o.status.success(), "vidi {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("vidi {args:?}: {e}"))
}

/// `vidi classify --device gpu` on real clips gives the CPU's scores within 1e-4.
#[test]
fn classify_on_wgpu_equals_the_cpu() {
    let clips = [clip("asl_thanks.mkv"), clip("v_ApplyEyeMakeup_g01_c01.avi")];
    for name in ["videomae_cls", "timesformer"] {
        let m = fixtures().join("models").join(name);
        let args = vec!["classify", "--json", "--top-k", "5", "--model", m.to_str().unwrap(), "--device"];
        let files: Vec<&str> = clips.iter().map(|c| c.to_str().unwrap()).collect();
        let run = |device: &str| {
            let mut a = args.clone();
            a.push(device);
            a.extend(files.iter().copied());
            vidi_json(&a)
        };
        let (gpu, cpu) = (run("gpu"), run("cpu"));
        for (g, c) in gpu.as_array().unwrap().iter().zip(cpu.as_array().unwrap()) {
            let (gp, cp) = (g["predictions"].as_array().unwrap(), c["predictions"].as_array().unwrap());
            assert_eq!(gp.len(), cp.len(), "{name}");
            assert!(!gp.is_empty());
            for (a, b) in gp.iter().zip(cp) {
                assert_eq!(a["label"], b["label"], "{name}: {g} vs {c}");
                let diff = (a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs();
                assert!(diff <= 1e-4, "{name} {}: score differs by {diff}", a["label"]);
            }
        }
    }
}

/// The device memory of a training step at `frames` frames, by `vidi bench train --json`.
fn step_memory(dir: &Path, frames: usize) -> (u64, u64) {
    let f = frames.to_string();
    let row = vidi_json(&[
        "bench",
        "train",
        "--model",
        dir.to_str().unwrap(),
        "--frames",
        &f,
        "--batch",
        "1",
        "--steps",
        "1",
        "--device",
        "gpu",
        "--workers",
        "0",
        "--json",
    ]);
    let peak = row["peak_device_bytes"].as_u64().unwrap_or_else(|| panic!("peak_device_bytes on a GPU run: {row}"));
    (peak, row["tokens"].as_u64().unwrap())
}

/// A training step's device memory grows linearly with the number of tokens:
/// doubling the frames (and so the tokens) at most about doubles it. The
/// model is small and its heads many, so that attention's `tokens x tokens`
/// probabilities, if a step kept them, would dominate and quadruple it.
#[test]
fn training_memory_on_wgpu_grows_linearly_with_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "model_type": "videomae", "image_size": 64, "patch_size": 8, "num_frames": 8, "tubelet_size": 2,
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 8, "intermediate_size": 64,
        "use_mean_pooling": true, "num_labels": 3,
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let runs: Vec<(u64, u64)> = [8, 16, 32].iter().map(|&f| step_memory(dir.path(), f)).collect();
    for w in runs.windows(2) {
        let ((m1, t1), (m2, t2)) = (w[0], w[1]);
        assert_eq!(t2, 2 * t1);
        let ratio = m2 as f64 / m1 as f64;
        assert!(ratio <= 2.3, "{t1} -> {t2} tokens: device memory {m1} -> {m2} bytes (x{ratio:.2})");
        assert!(ratio >= 1.3, "{t1} -> {t2} tokens: device memory {m1} -> {m2} bytes should grow (x{ratio:.2})");
    }
}

/// Index of the largest value of each row of `cols` values.
fn top1(v: &[f32], cols: usize) -> Vec<usize> {
    v.chunks(cols).map(|r| (0..cols).fold(0, |best, i| if r[i] > r[best] { i } else { best })).collect()
}

/// `--precision f16` on wgpu: where the adapter `--device gpu` takes has
/// SHADER_F16, `vidi forward` gives transformers' (f32) logits within 1e-2 and
/// the same top-1 on the fixtures; where it has not, a one-line refusal that
/// names the reason. On the CPU it is always refused; f32 is the default.
#[test]
fn f16_inference_on_wgpu_matches_transformers_or_is_refused() {
    let reports = vidi::backend::adapter_reports();
    let picked = reports
        .iter()
        .find(|a| ["DiscreteGpu", "IntegratedGpu", "VirtualGpu"].contains(&a.device_type.as_str()))
        .or_else(|| reports.iter().find(|a| a.device_type == "Cpu"))
        .expect("a wgpu adapter (lavapipe on CI)");
    let out = tempfile::tempdir().unwrap();
    for name in ["videomae_meanpool", "timesformer", "vivit", "vjepa2"] {
        let m = fixtures().join("models").join(name);
        let io = m.join("io.safetensors");
        let logits = out.path().join(format!("{name}.safetensors"));
        let run = |device: &str| {
            Command::new(env!("CARGO_BIN_EXE_vidi"))
                .args(["forward", "--precision", "f16", "--device", device, "--model"])
                .arg(&m)
                .arg("--pixel-values")
                .arg(&io)
                .arg("--out")
                .arg(&logits)
                .env_remove("VIDI_DEVICE")
                .output()
                .expect("run vidi")
        };
        let cpu = run("cpu");
        let err = String::from_utf8_lossy(&cpu.stderr);
        assert!(!cpu.status.success() && err.contains("--precision f16 is not available"), "{name} on the CPU: {err}");
        let o = run("gpu");
        let err = String::from_utf8_lossy(&o.stderr);
        if !picked.shader_f16 {
            assert!(!o.status.success(), "{name}: f16 ran on {} without SHADER_F16", picked.name);
            assert!(err.contains("no SHADER_F16"), "{name}: {err}");
            continue;
        }
        assert!(o.status.success(), "{name}: {err}");
        let (shape, got) = read_tensor(&logits, "logits");
        let (_, want) = read_tensor(&io, "logits");
        let diff = max_abs_diff(&got, &want);
        assert!(diff <= 1e-2, "{name} in f16 on {}: max |logit diff| {diff}", picked.name);
        assert_eq!(top1(&got, shape[1]), top1(&want, shape[1]), "{name} in f16: top-1");
    }
}

/// `vidi bench train` reports the dataset loader's clips/s (on the workers
/// asked for, for the model's clips) beside the model's.
#[test]
fn bench_train_reports_the_loaders_clips_per_second() {
    let row =
        vidi_json(&["bench", "train", "--arch", "tiny", "--steps", "1", "--device", "cpu", "--workers", "1", "--json"]);
    let loader = &row["loader"];
    assert_eq!(loader["workers"], 1, "{row}");
    assert!(loader["clips"].as_u64().unwrap() >= 12, "{row}");
    assert!(loader["clips_per_s"].as_f64().unwrap() > 0.0, "{row}");
    assert!(row["clips_per_s"].as_f64().unwrap() > 0.0, "{row}");
    assert!(vidi::dataset::loader::default_workers() >= 1);
}

/// Three Trainer steps on wgpu read nothing back from the device: the loss,
/// the gradient norm and the clipping coefficient stay there until the log
/// asks for them, and then all six numbers come back in one read, equal to
/// PyTorch's (the fixture of `optimizer_steps_on_wgpu_match_pytorch`, whose
/// norms are above `max_grad_norm`, so every step is clipped on the device).
#[test]
fn training_steps_on_wgpu_read_nothing_back_until_the_log() {
    use vidi::backend::{device_reads, Scalar};
    use vidi::model::{LoadOptions, VideoModel};
    use vidi::train::optim::{self, AdamW, GradAccumulator};
    let dir = fixtures().join("models/videomae_meanpool");
    let crate::train::StepFixture { log, labels, cfg, lr, total, warmup } =
        crate::train::step_fixture("videomae_meanpool");
    let (shape, pixels) = read_tensor(&dir.join("io.safetensors"), "pixel_values");
    let shape: [usize; 5] = shape.try_into().unwrap();
    let (mut model, _) = VideoModel::load(&dir, &LoadOptions::default(), &wgpu().autodiff()).unwrap();
    let mut opt = AdamW::new(cfg);
    let before = device_reads();
    let (mut losses, mut norms) = (Vec::new(), Vec::new());
    for step in 0..3u64 {
        let mut acc = GradAccumulator::default();
        let scale = 1.0 / labels.len() as f64;
        losses.push(vidi::train::accumulate(&model, pixels.clone(), shape, &labels, scale, 0, &mut acc).unwrap());
        let info;
        (model, info) = vidi::train::apply_step(model, &mut opt, acc, optim::linear_schedule(lr, step, warmup, total));
        norms.push(info.grad_norm);
    }
    assert_eq!(device_reads() - before, 0, "three steps on wgpu read from the device");
    assert!(losses.iter().chain(&norms).all(|s| s.host_value().is_none()), "a value was read on the host");
    let read = Scalar::values(&[losses, norms].concat());
    assert_eq!(device_reads() - before, 1, "the log's values took more than one read");
    for (i, (key, tol)) in [("losses", 1e-5), ("grad_norms", 1e-4)].into_iter().enumerate() {
        for step in 0..3 {
            let (got, want) = (read[3 * i + step], log[key][step].as_f64().unwrap());
            assert!((got - want).abs() <= tol * want.max(1.0), "{key}[{step}]: {got} on wgpu, PyTorch {want}");
        }
    }
}

/// `vidi train` on wgpu: a step's event carries the loss and the gradient
/// norm on log steps only (the others read nothing), and metrics.jsonl
/// holds the losses and norms the same run logs on the CPU.
#[test]
fn training_on_wgpu_logs_what_the_cpu_logs() {
    let m = crate::train::motion();
    let logged = |device: DeviceChoice| {
        let cfg = vidi::train::TrainConfig { max_steps: Some(4), device, ..crate::train::motion_config(m, 1) };
        let out = m.root.join(format!("run-logs-{device:?}"));
        let (_, events) = crate::train::run_training(Some(&cfg), &out, None);
        let steps: Vec<(u64, Option<f64>, Option<f64>)> = events
            .iter()
            .filter_map(|e| match e {
                vidi::train::TrainEvent::Step { step, loss, grad_norm, .. } => Some((*step, *loss, *grad_norm)),
                _ => None,
            })
            .collect();
        let metrics: Vec<(u64, f64, f64)> = std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("loss").is_some())
            .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap(), v["grad_norm"].as_f64().unwrap()))
            .collect();
        (steps, metrics)
    };
    let (gpu_steps, gpu_metrics) = logged(DeviceChoice::Gpu);
    let (cpu_steps, cpu_metrics) = logged(DeviceChoice::Cpu);
    assert_eq!(gpu_steps.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    for ((step, loss, norm), (_, cpu_loss, cpu_norm)) in gpu_steps.iter().zip(&cpu_steps) {
        assert!(cpu_loss.is_some() && cpu_norm.is_some(), "the CPU's step {step} has no loss");
        let log_step = step % 2 == 0;
        assert_eq!(loss.is_some(), log_step, "step {step} on wgpu: loss {loss:?}");
        assert_eq!(norm.is_some(), log_step, "step {step} on wgpu: grad_norm {norm:?}");
        if log_step {
            assert!((loss.unwrap() - cpu_loss.unwrap()).abs() <= 1e-3, "step {step}: loss {loss:?} vs {cpu_loss:?}");
        }
    }
    assert_eq!(gpu_metrics.iter().map(|m| m.0).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(cpu_metrics.len(), gpu_metrics.len());
    for ((step, loss, norm), (_, cpu_loss, cpu_norm)) in gpu_metrics.iter().zip(&cpu_metrics) {
        assert!((loss - cpu_loss).abs() <= 1e-3, "step {step}: logged loss {loss} on wgpu, {cpu_loss} on the CPU");
        assert!((norm - cpu_norm).abs() <= 1e-3 * cpu_norm.max(1.0), "step {step}: grad_norm {norm} vs {cpu_norm}");
    }
}

/// Few kernels for the elementwise work, counted by cubecl's launch observer
/// in `vidi bench train --device gpu` (its own process: the observer sees
/// every launch of the process) on lavapipe with fusion: an AdamW step, the
/// gradient norm and the clipping included, at most 6 launches per parameter
/// tensor; a LayerNorm at most 6 and an exact GELU at most 2 (unfused, Burn's
/// tensor operations would be a dozen or more for each).
#[test]
fn adamw_layer_norm_and_gelu_launch_a_handful_of_kernels() {
    let dir = fixtures().join("models/videomae_meanpool");
    let dir = dir.to_str().unwrap();
    let bench = ["bench", "train", "--model", dir, "--batch", "2", "--steps", "1", "--workers", "0", "--json"];
    let row = vidi_json(&[&bench[..], &["--device", "gpu"]].concat());
    let k = &row["kernels"];
    assert_eq!(k["fusion"], true, "{k}");
    let tensors = k["parameter_tensors"].as_u64().unwrap();
    assert!(tensors > 30, "{k}");
    let per_tensor = k["optimizer_per_tensor"].as_f64().unwrap();
    assert!((1.0..=6.0).contains(&per_tensor), "AdamW: {per_tensor:.1} kernels per parameter tensor: {k}");
    let (norm, gelu) = (k["layer_norm"].as_u64().unwrap(), k["activation"].as_u64().unwrap());
    assert!((1..=6).contains(&norm), "LayerNorm: {norm} kernels: {k}");
    assert!((1..=2).contains(&gelu), "GELU: {gelu} kernels: {k}");
    assert!(k["forward_backward"].as_u64().unwrap() > 0, "{k}");
    // And on the CPU, nothing is launched and nothing is reported.
    let cpu = vidi_json(&[&bench[..], &["--device", "cpu"]].concat());
    assert!(cpu["kernels"].is_null(), "{cpu}");
}

/// The three Trainer steps of a PyTorch fixture in mixed precision
/// (`--precision f16`: products in f16, f32 weights and moments, the loss
/// scaled from 65536 down while the scaled gradients overflow f16, such steps
/// skipped), or in f32 on wgpu: `(losses, grad_norms, model, skipped)` of the
/// steps that trained.
fn mixed_steps(name: &str, mixed: bool) -> (Vec<f64>, Vec<f64>, vidi::model::VideoModel, usize) {
    use vidi::model::{LoadOptions, VideoModel};
    use vidi::train::optim::{self, AdamW, GradAccumulator, LossScaler};
    let dir = fixtures().join("models").join(name);
    let crate::train::StepFixture { labels, cfg, lr, total, warmup, .. } = crate::train::step_fixture(name);
    let (shape, pixels) = read_tensor(&dir.join("io.safetensors"), "pixel_values");
    let shape: [usize; 5] = shape.try_into().unwrap();
    let (mut model, _) = VideoModel::load(&dir, &LoadOptions::default(), &wgpu().autodiff()).unwrap();
    let mut opt = AdamW::new(cfg);
    let mut scaler = LossScaler::default();
    let (mut losses, mut norms, mut skipped) = (Vec::new(), Vec::new(), 0);
    while losses.len() < 3 {
        assert!(skipped < 8, "{name}: {skipped} mixed-precision steps skipped, loss scale down to {}", scaler.scale);
        let mut acc = GradAccumulator::new(mixed.then_some(scaler.scale));
        let scale = 1.0 / labels.len() as f64;
        let loss = vidi::train::accumulate(&model, pixels.clone(), shape, &labels, scale, 0, &mut acc).unwrap();
        let lr = optim::linear_schedule(lr, opt.steps, warmup, total);
        let info;
        (model, info) = vidi::train::apply_step(model, &mut opt, acc, lr);
        scaler.update(!info.skipped);
        if info.skipped {
            assert!(mixed, "{name}: an f32 step was skipped");
            skipped += 1;
            continue;
        }
        losses.push(loss.value());
        norms.push(info.grad_norm.value());
    }
    assert_eq!(scaler.scale, LossScaler::INIT / 2f64.powi(skipped as i32), "{name}: the scale after {skipped} skips");
    (losses, norms, model, skipped)
}

/// Mixed-precision training on wgpu, where the adapter has SHADER_F16: the
/// three Trainer steps of the PyTorch fixtures (VideoMAE's all-token
/// attention, TimeSformer's grouped ones) give PyTorch's f32 losses and
/// gradient norms within 1%, and the model they leave gives the f32-trained
/// model's logits within 1e-2 with the same top-1. TimeSformer's gradients
/// (norm 16) overflow f16 at the first loss scale: that step is skipped and
/// the next, at half the scale, trains. Where the adapter has no f16 shaders,
/// and on the CPU, a one-line refusal.
#[test]
fn mixed_precision_steps_on_wgpu_follow_pytorchs_f32_steps() {
    use vidi::backend::{check_f16, Precision};
    let cpu = check_f16(&vidi::backend::cpu(), Precision::F16).unwrap_err().to_string();
    assert!(cpu.contains("--precision f16 is not available") && cpu.contains("f16 needs --device gpu"), "{cpu}");
    let compute = vidi::backend::select(DeviceChoice::Gpu).unwrap();
    if let Err(e) = check_f16(&compute, Precision::F16) {
        let f16 = vidi::backend::adapter_reports().iter().any(|a| a.shader_f16);
        assert!(!f16 || !compute.device.supports_dtype(burn::tensor::FloatDType::F16), "refused: {e}");
        assert!(e.to_string().contains("no SHADER_F16"), "{e}");
        return;
    }
    for name in ["videomae_meanpool", "timesformer"] {
        let log = crate::train::step_fixture(name).log;
        let (losses, norms, mixed, skipped) = mixed_steps(name, true);
        eprintln!("{name}: mixed precision skipped {skipped} step(s); losses {losses:?}, grad norms {norms:?}");
        for (key, got) in [("losses", &losses), ("grad_norms", &norms)] {
            for (step, got) in got.iter().enumerate() {
                let want = log[key][step].as_f64().unwrap();
                assert!(
                    (got - want).abs() <= 1e-2 * want.abs().max(1.0),
                    "{name} {key}[{step}]: {got} mixed, PyTorch f32 {want}"
                );
            }
        }
        let (_, _, plain, _) = mixed_steps(name, false);
        let dir = fixtures().join("models").join(name);
        let (shape, pixels) = read_tensor(&dir.join("io.safetensors"), "pixel_values");
        let logits = |m: &vidi::model::VideoModel| {
            let m = vidi::train::inference_copy(m);
            let x = Tensor::<5>::from_data(TensorData::new(pixels.clone(), shape.clone()), &m.device);
            values(m.forward(x).unwrap())
        };
        let (got, want) = (logits(&mixed), logits(&plain));
        let diff = max_abs_diff(&got, &want);
        let k = plain.labels.len();
        eprintln!("{name}: logits after mixed-precision training, max |diff| {diff:.2e} from f32 training");
        assert!(diff <= 1e-2, "{name}: logits after mixed-precision training, max |diff| {diff} from f32 training");
        assert_eq!(top1(&got, k), top1(&want, k), "{name}: top-1 after mixed-precision training");
    }
}

/// A mixed-precision step whose scaled gradients overflow f16 is skipped, as
/// `torch.amp.GradScaler` skips it: the model's logits are bit for bit those
/// before the step and AdamW counts no step; at the first scale (65536) the
/// same step trains, with PyTorch's f32 loss within 1%.
#[test]
fn mixed_precision_skips_a_step_whose_gradients_overflow() {
    use vidi::model::{LoadOptions, VideoModel};
    use vidi::train::optim::{AdamW, GradAccumulator, LossScaler};
    let compute = vidi::backend::select(DeviceChoice::Gpu).unwrap();
    if vidi::backend::check_f16(&compute, vidi::backend::Precision::F16).is_err() {
        return; // the refusal is checked by mixed_precision_steps_on_wgpu_follow_pytorchs_f32_steps
    }
    let name = "videomae_meanpool";
    let dir = fixtures().join("models").join(name);
    let crate::train::StepFixture { log, labels, cfg, lr, .. } = crate::train::step_fixture(name);
    let (shape, pixels) = read_tensor(&dir.join("io.safetensors"), "pixel_values");
    let shape: [usize; 5] = shape.try_into().unwrap();
    let (mut model, _) = VideoModel::load(&dir, &LoadOptions::default(), &compute.device.clone().autodiff()).unwrap();
    let logits = |m: &VideoModel| {
        let m = vidi::train::inference_copy(m);
        let x = Tensor::<5>::from_data(TensorData::new(pixels.clone(), shape), &m.device);
        values(m.forward(x).unwrap())
    };
    let before = logits(&model);
    let mut opt = AdamW::new(cfg);
    let scale = 1.0 / labels.len() as f64;
    let step = |model: VideoModel, opt: &mut AdamW, loss_scale: f64| {
        let mut acc = GradAccumulator::new(Some(loss_scale));
        let loss = vidi::train::accumulate(&model, pixels.clone(), shape, &labels, scale, 0, &mut acc).unwrap();
        let (model, info) = vidi::train::apply_step(model, opt, acc, lr);
        (model, info, loss.value())
    };
    // 2^40: f16 tops out at 65504, so the scaled gradients overflow in the first product back.
    let (m, info, loss) = step(model, &mut opt, 2f64.powi(40));
    model = m;
    assert!(info.skipped, "a step at loss scale 2^40 was not skipped (loss {loss})");
    assert_eq!(opt.steps, 0, "a skipped step counted as an AdamW step");
    assert_eq!(logits(&model), before, "a skipped step changed the model");
    let mut scaler = LossScaler { scale: 2f64.powi(40), good_steps: 0 };
    scaler.update(false);
    assert_eq!(scaler.scale, 2f64.powi(39), "GradScaler's backoff factor is 0.5");
    let (m, info, loss) = step(model, &mut opt, LossScaler::INIT);
    assert!(!info.skipped, "the step at the first loss scale was skipped");
    assert_eq!(opt.steps, 1);
    let want = log["losses"][0].as_f64().unwrap();
    assert!((loss - want).abs() <= 1e-2 * want.max(1.0), "loss {loss} after a skip, PyTorch f32 {want}");
    assert_ne!(logits(&m), before, "the step after the skip did not train");
}

/// `vidi train --precision f16`: on the CPU refused in one line before the
/// run folder is made; on wgpu with SHADER_F16 the run logs the loss scale
/// beside losses within 2% of the same run's in f32 on the CPU, records its
/// precision in config.json, and leaves an f32 model in best/.
#[test]
fn vidi_train_in_mixed_precision() {
    use vidi::train::TrainEvent;
    let m = crate::train::motion();
    let out = m.root.join("run-mixed-cpu");
    let base = crate::train::motion_config(m, 1);
    let o = Command::new(env!("CARGO_BIN_EXE_vidi"))
        .args(["train", "--precision", "f16", "--device", "cpu", "--max-steps", "2", "--data"])
        .arg(&base.data)
        .arg("--model")
        .arg(&base.model)
        .arg("--out")
        .arg(&out)
        .env_remove("VIDI_DEVICE")
        .output()
        .expect("run vidi");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--precision f16 is not available"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!out.exists(), "a refused run made its folder");
    let compute = vidi::backend::select(DeviceChoice::Gpu).unwrap();
    if vidi::backend::check_f16(&compute, vidi::backend::Precision::F16).is_err() {
        return;
    }
    let metrics = |precision, device, dir: &str| {
        let base = crate::train::motion_config(m, 1);
        let cfg = vidi::train::TrainConfig { max_steps: Some(4), device, precision, ..base };
        let out = m.root.join(dir);
        let (summary, events) = crate::train::run_training(Some(&cfg), &out, None);
        let logs: Vec<(f64, Option<f64>)> = events
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Log { loss, loss_scale, .. } => Some((*loss, *loss_scale)),
                _ => None,
            })
            .collect();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &serde_json::Value| v.get("loss").is_some())
            .collect();
        (summary, out, logs, lines)
    };
    let (_, _, cpu_logs, _) = metrics(vidi::backend::Precision::F32, DeviceChoice::Cpu, "run-f32-cpu");
    let (summary, out, logs, lines) = metrics(vidi::backend::Precision::F16, DeviceChoice::Gpu, "run-mixed-gpu");
    assert_eq!(logs.len(), 2, "{logs:?}");
    for (((loss, scale), line), (cpu_loss, cpu_scale)) in logs.iter().zip(&lines).zip(&cpu_logs) {
        assert_eq!(*scale, Some(65536.0), "the loss scale of a run with no overflow");
        assert_eq!(line["loss_scale"].as_f64(), Some(65536.0), "{line}");
        assert_eq!(*cpu_scale, None, "an f32 run logged a loss scale");
        assert!(
            (loss - cpu_loss).abs() <= 2e-2 * cpu_loss.max(1.0),
            "loss {loss} mixed on wgpu, {cpu_loss} f32 on the CPU"
        );
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["precision"], "f16");
    let best = summary.best_dir.expect("a best model");
    let bytes = std::fs::read(best.join("model.safetensors")).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8_lossy(&bytes[8..8 + len]);
    assert!(header.contains("\"F32\"") && !header.contains("\"F16\""), "best/ is not all f32: {header}");
    let card = vidi::share::model_card(&best, "me/mixed").unwrap();
    assert!(card.contains("| precision | mixed: products in f16"), "{card}");
}

/// A mixed-precision run on wgpu stopped after a step and resumed ends with
/// the uninterrupted run's weights and moments (within 1e-6): the stop's
/// checkpoint keeps the loss scale, its growth count and AdamW's own step count.
#[test]
fn a_mixed_precision_run_resumes_exactly() {
    let compute = vidi::backend::select(DeviceChoice::Gpu).unwrap();
    if vidi::backend::check_f16(&compute, vidi::backend::Precision::F16).is_err() {
        return;
    }
    let m = crate::train::motion();
    let base = crate::train::motion_config(m, 1);
    let cfg = vidi::train::TrainConfig {
        max_steps: Some(4),
        device: DeviceChoice::Gpu,
        precision: vidi::backend::Precision::F16,
        ..base
    };
    let (whole, part) = (m.root.join("mixed-whole"), m.root.join("mixed-stopped"));
    let (s_whole, _) = crate::train::run_training(Some(&cfg), &whole, None);
    assert_eq!(s_whole.steps, 4);
    let (s_stop, _) = crate::train::run_training(Some(&cfg), &part, Some(2));
    assert!(s_stop.stopped && s_stop.steps < 4, "{} steps, stopped {}", s_stop.steps, s_stop.stopped);
    let stop = part.join(format!("checkpoint-step-{}", s_stop.steps));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stop.join("trainer_state.json")).unwrap()).unwrap();
    assert_eq!(state["loss_scaler"], serde_json::json!({"scale": 65536.0, "good_steps": s_stop.steps}), "{state}");
    assert_eq!(state["optimizer_steps"], s_stop.steps, "{state}");
    let (s_res, _) = crate::train::run_training(None, &part, None);
    assert_eq!(s_res.steps, 4);
    let (a, b) = (
        crate::train::weights_of(&whole.join("checkpoint-epoch-1")),
        crate::train::weights_of(&part.join("checkpoint-epoch-1")),
    );
    for (k, t) in &a {
        let d = max_abs_diff(&t.data, &b[k].data);
        assert!(d <= 1e-6, "{k}: the resumed mixed-precision run differs from the uninterrupted one by {d}");
    }
    let opt =
        |d: &Path| vidi::model::weights::read_safetensors(&d.join("checkpoint-epoch-1/optimizer.safetensors")).unwrap();
    let (oa, ob) = (opt(&whole), opt(&part));
    assert_eq!(oa.len(), ob.len());
    for (k, t) in &oa {
        assert!(max_abs_diff(&t.data, &ob[k].data) <= 1e-6, "optimizer {k}");
    }
}
