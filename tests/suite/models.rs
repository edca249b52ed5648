//! Model parity: logits transformers computed (tests/fixtures/models, made by
//! make_reference.py there) vs vidi's Burn ports, from safetensors, sharded
//! safetensors and pickle checkpoints; head replacement; export round trip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use vidi::model::weights::{read_safetensors, write_safetensors, HostTensor};
use vidi::model::{LoadOptions, VideoModel};

use crate::{fixtures, max_abs_diff, read_tensor};

// videomae_long (256 tokens) and timesformer_long (257) reach the blocked paths of vidi's CPU kernels (backend::kernels).
const CLASSIFIERS: [&str; 6] =
    ["videomae_meanpool", "videomae_cls", "videomae_long", "timesformer", "timesformer_long", "vivit"];

// Configs with dropout and drop-path (off in evaluation), other activations, eps and qkv_bias.
const DROPOUT_CONFIGS: [&str; 3] = ["videomae_dropout", "timesformer_dropout", "vivit_dropout"];

/// Every classifier fixture.
fn all_classifiers() -> impl Iterator<Item = &'static str> {
    CLASSIFIERS.into_iter().chain(DROPOUT_CONFIGS)
}

fn model_dir(name: &str) -> PathBuf {
    fixtures().join("models").join(name)
}

fn cpu() -> burn::tensor::Device {
    vidi::backend::cpu().device
}

/// Logits for the fixture's pixel_values from the model in `dir`, and the reference logits.
fn logits(dir: &Path, io: &Path) -> (Vec<f32>, Vec<f32>) {
    let (model, _) = VideoModel::load(dir, &LoadOptions::default(), &cpu()).unwrap_or_else(|e| panic!("{e}"));
    let (shape, pixels) = read_tensor(io, "pixel_values");
    let (_, want) = read_tensor(io, "logits");
    let got = model.forward_host(HostTensor::new(shape, pixels)).unwrap();
    (got.data, want)
}

fn copy_without(src: &Path, dst: &Path, skip: &[&str]) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if !skip.contains(&name.as_str()) {
            std::fs::copy(&p, dst.join(&name)).unwrap();
        }
    }
}

#[test]
fn logits_match_transformers_from_safetensors() {
    for name in all_classifiers() {
        let dir = model_dir(name);
        let (got, want) = logits(&dir, &dir.join("io.safetensors"));
        let diff = max_abs_diff(&got, &want);
        assert!(diff <= 1e-4, "{name}: max |logit diff| {diff}");
    }
}

#[test]
fn logits_match_from_pickle_and_sharded_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    for name in all_classifiers() {
        let dir = model_dir(name);
        // Pickle only (where the fixture has one).
        if !dir.join("pytorch_model.bin").exists() {
            assert!(DROPOUT_CONFIGS.contains(&name), "{name} has no pytorch_model.bin");
            continue;
        }
        let bin = tmp.path().join(format!("{name}-bin"));
        copy_without(&dir, &bin, &["model.safetensors"]);
        let (got, want) = logits(&bin, &dir.join("io.safetensors"));
        assert!(max_abs_diff(&got, &want) <= 1e-4, "{name} from pytorch_model.bin");
        // Two shards and an index.
        let sharded = tmp.path().join(format!("{name}-sharded"));
        copy_without(&dir, &sharded, &["model.safetensors", "pytorch_model.bin"]);
        let all = read_safetensors(&dir.join("model.safetensors")).unwrap();
        let (a, b): (Vec<_>, Vec<_>) = all.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let mut weight_map = serde_json::Map::new();
        for (part, file) in [(a, "model-00001-of-00002.safetensors"), (b, "model-00002-of-00002.safetensors")] {
            let map: std::collections::BTreeMap<String, HostTensor> = part.into_iter().map(|(_, kv)| kv).collect();
            for k in map.keys() {
                weight_map.insert(k.clone(), serde_json::json!(file));
            }
            write_safetensors(&sharded.join(file), &map).unwrap();
        }
        let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
        std::fs::write(sharded.join("model.safetensors.index.json"), index.to_string()).unwrap();
        let (got, want) = logits(&sharded, &dir.join("io.safetensors"));
        assert!(max_abs_diff(&got, &want) <= 1e-4, "{name} from shards");
    }
}

#[test]
fn export_round_trips_with_transformers_key_names() {
    let tmp = tempfile::tempdir().unwrap();
    for name in all_classifiers() {
        let dir = model_dir(name);
        let (model, report) = VideoModel::load(&dir, &LoadOptions::default(), &cpu()).unwrap();
        assert!(report.unused.is_empty(), "{name}: unused {:?}", report.unused);
        let out = tmp.path().join(name);
        model.export(&out).unwrap();
        // Same key set and shapes as the checkpoint transformers wrote.
        let theirs = read_safetensors(&dir.join("model.safetensors")).unwrap();
        let ours = read_safetensors(&out.join("model.safetensors")).unwrap();
        assert_eq!(theirs.keys().collect::<BTreeSet<_>>(), ours.keys().collect::<BTreeSet<_>>(), "{name}");
        for (k, t) in &theirs {
            assert_eq!(t.shape, ours[k].shape, "{name} {k}");
            assert!(max_abs_diff(&t.data, &ours[k].data) == 0.0, "{name} {k} changed on export");
        }
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(cfg["id2label"]["0"], "class_0");
        assert_eq!(cfg["label2id"]["class_4"], 4);
        assert!(cfg["architectures"][0].as_str().unwrap().ends_with("ForVideoClassification"));
        let (got, want) = logits(&out, &dir.join("io.safetensors"));
        assert!(max_abs_diff(&got, &want) <= 1e-4, "{name} after export");
    }
}

#[test]
fn new_labels_replace_the_head_and_pretraining_weights_are_reported() {
    let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let opts = LoadOptions { labels: Some(labels.clone()), seed: 1 };
    let (model, report) = VideoModel::load(&model_dir("videomae_meanpool"), &opts, &cpu()).unwrap();
    assert_eq!(model.labels, labels);
    assert!(report.newly_initialized.contains(&"classifier.weight".to_string()));
    assert!(report.unused.contains(&"classifier.weight".to_string()), "{:?}", report.unused);
    let (shape, pixels) = read_tensor(&model_dir("videomae_meanpool").join("io.safetensors"), "pixel_values");
    assert_eq!(model.forward_host(HostTensor::new(shape, pixels)).unwrap().shape, vec![2, 3]);

    let (model, report) = VideoModel::load(&model_dir("videomae_pretraining"), &opts, &cpu()).unwrap();
    assert_eq!(model.labels.len(), 3);
    for k in ["encoder_to_decoder.weight", "mask_token", "decoder.norm.weight"] {
        assert!(
            report.ignored_pretraining.iter().any(|x| x == k),
            "{k} not reported: {:?}",
            report.ignored_pretraining
        );
    }
    assert!(report.unused.is_empty(), "{:?}", report.unused);
    // Without labels, a pre-training checkpoint cannot classify: a clear error.
    let err = VideoModel::load(&model_dir("videomae_pretraining"), &LoadOptions::default(), &cpu()).unwrap_err();
    assert!(err.to_string().contains("no classifier"), "{err}");
}

#[test]
fn unsupported_configs_and_inputs_are_clear_errors() {
    let err = VideoModel::load(&model_dir("timesformer_space_only"), &LoadOptions::default(), &cpu()).unwrap_err();
    assert!(err.to_string().contains("space_only"), "{err}");
    let (model, _) = VideoModel::load(&model_dir("vivit"), &LoadOptions::default(), &cpu()).unwrap();
    let bad = HostTensor::new(vec![1, 3, 3, 32, 32], vec![0.0; 3 * 3 * 32 * 32]);
    let err = model.forward_host(bad).unwrap_err();
    assert!(err.to_string().contains("(batch, 4, 3, 32, 32)"), "{err}");
    // A folder with a config but the wrong weights.
    let tmp = tempfile::tempdir().unwrap();
    copy_without(&model_dir("vivit"), tmp.path(), &["model.safetensors", "pytorch_model.bin"]);
    std::fs::copy(model_dir("timesformer").join("model.safetensors"), tmp.path().join("model.safetensors")).unwrap();
    let err = VideoModel::load(tmp.path(), &LoadOptions::default(), &cpu()).unwrap_err();
    assert!(err.to_string().contains("is missing"), "{err}");
}

/// The Kinetics-400 checkpoints of the three architectures, full size, from
/// the Hub: they load with no key left over, and each recognises the
/// mmaction2 demo clip (a Kinetics "arm wrestling" video) as arm wrestling.
/// Needs the network (and ~1.5 GB of downloads): `cargo test -- --ignored`.
#[test]
#[ignore = "needs the network: downloads the base-size checkpoints from the Hub"]
fn full_size_kinetics_checkpoints_recognise_arm_wrestling() {
    use vidi::infer::{classify, ClassifyOptions, Sampling, VideoResult};
    let clip = crate::clip("mmaction2_demo.mp4");
    for id in [
        "MCG-NJU/videomae-base-finetuned-kinetics",
        "facebook/timesformer-base-finetuned-k400",
        "google/vivit-b-16x2-kinetics400",
    ] {
        let dir = vidi::hub::resolve_model(id, None, None).unwrap_or_else(|e| panic!("{id}: {e}"));
        let (model, report) = VideoModel::load(&dir, &LoadOptions::default(), &cpu()).unwrap();
        assert!(report.unused.is_empty() && report.newly_initialized.is_empty(), "{id}: {report:?}");
        assert_eq!(model.labels.len(), 400);
        let opts = ClassifyOptions { sampling: Sampling::Uniform, ..Default::default() };
        let r = classify(&model, std::slice::from_ref(&clip), &opts, &mut |_, _| {});
        let VideoResult::Ok { predictions, .. } = &r[0] else { panic!("{id}: {r:?}") };
        let top = predictions[0].label.to_lowercase().replace('_', " ");
        assert_eq!(top, "arm wrestling", "{id}: {predictions:?}");
    }
}

/// The full-size V-JEPA 2 SSv2 classifier from the Hub gives transformers' top-5
/// on a committed clip: tests/fixtures/pipeline/vjepa2_ssv2_top5.json, written by
/// make_vjepa2_full.py there (a developer with the network runs it first).
/// Needs the network (~1.3 GB): `cargo test -- --ignored`.
#[test]
#[ignore = "needs the network: downloads facebook/vjepa2-vitl-fpc16-256-ssv2, and the reference of make_vjepa2_full.py"]
fn full_size_vjepa2_ssv2_gives_transformers_top5() {
    use vidi::infer::{classify, ClassifyOptions, VideoResult};
    let path = fixtures().join("pipeline/vjepa2_ssv2_top5.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; run tests/fixtures/pipeline/make_vjepa2_full.py (network) to write it", path.display())
    });
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = want["model"].as_str().unwrap();
    let dir = vidi::hub::resolve_model(id, None, None).unwrap_or_else(|e| panic!("{id}: {e}"));
    let (model, report) = VideoModel::load(&dir, &LoadOptions::default(), &cpu()).unwrap();
    assert!(report.unused.is_empty() && report.newly_initialized.is_empty(), "{id}: {report:?}");
    assert_eq!(model.config.num_frames, 16);
    let clip = fixtures().join(want["video"].as_str().unwrap());
    let opts = ClassifyOptions { top_k: 5, ..Default::default() };
    let r = classify(&model, std::slice::from_ref(&clip), &opts, &mut |_, _| {});
    let VideoResult::Ok { predictions, .. } = &r[0] else { panic!("{id}: {r:?}") };
    let want = want["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), want.len());
    for (g, w) in predictions.iter().zip(want) {
        assert_eq!(g.label, w["label"].as_str().unwrap(), "{predictions:?}");
        let d = (g.score as f64 - w["score"].as_f64().unwrap()).abs();
        assert!(d < 0.01, "{}: score off by {d}", g.label);
    }
}

/// The guide's starting point: the self-supervised `MCG-NJU/videomae-base`
/// loads for fine-tuning with a new 10-label head, its decoder reported as ignored.
#[test]
#[ignore = "needs the network: downloads MCG-NJU/videomae-base from the Hub"]
fn full_size_pretraining_checkpoint_loads_for_fine_tuning() {
    let dir = vidi::hub::resolve_model("MCG-NJU/videomae-base", None, None).unwrap();
    let labels: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let (model, report) = VideoModel::load(&dir, &LoadOptions { labels: Some(labels), seed: 0 }, &cpu()).unwrap();
    assert_eq!(model.labels.len(), 10);
    assert!(report.ignored_pretraining.iter().any(|k| k.starts_with("decoder.")), "{report:?}");
    assert!(report.newly_initialized.contains(&"classifier.weight".to_string()));
    assert!(report.unused.is_empty(), "{:?}", report.unused);
}

/// Gradients flow through every architecture (the ground fine-tuning stands
/// on): d(sum of logits)/d(classifier bias) is the batch size for every label,
/// and the gradient with respect to input pixels matches central finite differences.
#[test]
fn gradients_match_finite_differences() {
    use burn::tensor::{Tensor, TensorData};
    use vidi::model::Net;
    let device = cpu().autodiff();
    for name in CLASSIFIERS.into_iter().chain(["vjepa2"]) {
        let dir = model_dir(name);
        let (model, _) = VideoModel::load(&dir, &LoadOptions::default(), &device).unwrap();
        let (shape, pixels) = read_tensor(&dir.join("io.safetensors"), "pixel_values");
        let x: Tensor<5> = Tensor::from_data(TensorData::new(pixels.clone(), shape.clone()), &device).require_grad();
        let loss = model.forward(x.clone()).unwrap().sum();
        let grads = loss.backward();
        let bias = match &model.net {
            Net::VideoMae(m) => m.classifier.bias.as_ref().unwrap().val(),
            Net::Timesformer(m) => m.classifier.bias.as_ref().unwrap().val(),
            Net::Vivit(m) => m.classifier.bias.as_ref().unwrap().val(),
            Net::Vjepa2(m) => m.classifier.bias.as_ref().unwrap().val(),
            Net::VideoPrism(m) => m.classifier.bias.as_ref().unwrap().val(),
        };
        let gb: Vec<f32> = bias
            .grad(&grads)
            .expect("classifier bias has a gradient")
            .into_data()
            .convert::<f32>()
            .try_to_vec()
            .unwrap();
        assert!(gb.iter().all(|g| (g - 2.0).abs() < 1e-5), "{name}: bias grad {gb:?}");
        let gx: Vec<f32> = x.grad(&grads).expect("input gradient").into_data().convert::<f32>().try_to_vec().unwrap();
        pixel_gradients_match_finite_differences(name, &dir, &shape, &pixels, &gx);
    }
}

/// The autodiff gradient `gx` of the summed logits with respect to the input
/// `pixels` against central differences in f32 on the inference model of
/// fixture `dir`: at the start, a third in and the end, the pixel of the
/// nearest 64 that moves the logits most.
pub fn pixel_gradients_match_finite_differences(name: &str, dir: &Path, shape: &[usize], pixels: &[f32], gx: &[f32]) {
    let (m0, _) = VideoModel::load(dir, &LoadOptions::default(), &cpu()).unwrap();
    let f = |p: &Vec<f32>| -> f64 {
        m0.forward_host(HostTensor::new(shape.to_vec(), p.clone())).unwrap().data.iter().map(|v| *v as f64).sum()
    };
    let n = pixels.len();
    let pick = |c: usize| {
        (c.saturating_sub(32)..(c + 32).min(n)).max_by(|&i, &j| gx[i].abs().total_cmp(&gx[j].abs())).unwrap()
    };
    for idx in [pick(0), pick(n / 3), pick(n - 1)] {
        let h = 1e-2f32;
        let (mut a, mut b) = (pixels.to_vec(), pixels.to_vec());
        a[idx] += h;
        b[idx] -= h;
        let fd = (f(&a) - f(&b)) / (2.0 * h as f64);
        // f32 central differences are good to ~1e-4 here; the gradients are ~1e-2.
        assert!(fd.abs() > 1e-3, "{name}: pixel {idx} barely moves the logits ({fd}); pick another");
        let tol = 0.03 * fd.abs() + 1e-4;
        assert!(
            (fd - gx[idx] as f64).abs() < tol,
            "{name}: pixel {idx}: autodiff {} vs finite difference {fd}",
            gx[idx]
        );
    }
}

/// A copy of fixture `name` whose config.json has `changes` applied.
fn with_config(name: &str, dst: &Path, changes: serde_json::Value) -> PathBuf {
    copy_without(&model_dir(name), dst, &["pytorch_model.bin"]);
    let path = dst.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (k, v) in changes.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    std::fs::write(&path, cfg.to_string()).unwrap();
    dst.to_path_buf()
}

fn fixture_input(name: &str, device: &burn::tensor::Device) -> burn::tensor::Tensor<5> {
    let (shape, pixels) = read_tensor(&model_dir(name).join("io.safetensors"), "pixel_values");
    vidi::backend::to_device(HostTensor::new(shape, pixels), device)
}

/// Dropout and drop-path are training's alone: in evaluation a config with
/// them gives exactly the logits of the same config without them (and
/// transformers' eval logits, checked with the other fixtures above), and
/// so does a training pass of the config without them.
#[test]
fn dropout_configs_evaluate_exactly_as_without_dropout() {
    let tmp = tempfile::tempdir().unwrap();
    let zero =
        serde_json::json!({"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "drop_path_rate": 0});
    for name in DROPOUT_CONFIGS {
        let (with, _) = VideoModel::load(&model_dir(name), &LoadOptions::default(), &cpu()).unwrap();
        let plain_dir = with_config(name, &tmp.path().join(name), zero.clone());
        let (without, _) = VideoModel::load(&plain_dir, &LoadOptions::default(), &cpu()).unwrap();
        let x = fixture_input(name, &cpu());
        let a = vidi::backend::to_host(with.forward(x.clone()).unwrap());
        let b = vidi::backend::to_host(without.forward(x.clone()).unwrap());
        assert_eq!(a.data, b.data, "{name}: evaluation with dropout in the config differs");
        let c = vidi::backend::to_host(without.forward_train(x.clone(), 3).unwrap());
        assert_eq!(b.data, c.data, "{name}: a training pass without dropout differs from evaluation");
        // With the dropouts on, a training pass is another computation.
        let d = vidi::backend::to_host(with.forward_train(x, 3).unwrap());
        assert!(max_abs_diff(&a.data, &d.data) > 1e-2, "{name}: training with dropout changed nothing");
    }
}

/// The dropout masks: a fraction p of the values dropped, the rest scaled by
/// 1/(1-p); drop-path drops whole units (a sample's values) together; the
/// same seed draws the same mask and another seed another; the gradient
/// flows through the kept values only, with their scale.
#[test]
fn dropout_masks_drop_p_and_scale_the_kept_values() {
    use burn::tensor::Tensor;
    use vidi::backend::ops::dropout;
    let device = cpu();
    let ones = || Tensor::<3>::ones([8, 500, 50], &device);
    for p in [0.1, 0.3, 0.5] {
        let y = vidi::backend::to_host(dropout(ones(), p, 11, 1)).data;
        let dropped = y.iter().filter(|v| **v == 0.0).count() as f64 / y.len() as f64;
        assert!((dropped - p).abs() < 0.01, "p {p}: dropped {dropped}");
        let scale = (1.0 / (1.0 - p)) as f32;
        assert!(y.iter().all(|v| *v == 0.0 || *v == scale), "p {p}: kept values are not scaled by 1/(1-p)");
        assert_eq!(y, vidi::backend::to_host(dropout(ones(), p, 11, 1)).data, "p {p}: same seed, another mask");
        assert_ne!(y, vidi::backend::to_host(dropout(ones(), p, 12, 1)).data, "p {p}: another seed, same mask");
    }
    // Drop-path: units of 500 x 50 values (a sample each), 2000 of them.
    let x = Tensor::<3>::ones([2000, 500, 50], &device);
    let y = vidi::backend::to_host(dropout(x, 0.25, 5, 500 * 50)).data;
    let mut dropped = 0;
    for unit in y.chunks(500 * 50) {
        assert!(unit.iter().all(|v| *v == unit[0]), "a sample is dropped only in part");
        dropped += usize::from(unit[0] == 0.0);
    }
    assert!((dropped as f64 / 2000.0 - 0.25).abs() < 0.03, "drop-path dropped {dropped} of 2000 samples");
    // p = 0 is the identity; under autodiff the gradient is the mask.
    let ad = device.autodiff();
    let x = Tensor::<3>::ones([4, 30, 20], &ad).require_grad();
    assert_eq!(vidi::backend::to_host(dropout(x.clone(), 0.0, 1, 1).inner()).data, vec![1.0; 2400]);
    let y = dropout(x.clone(), 0.4, 9, 1);
    let mask = vidi::backend::to_host(y.clone().inner()).data;
    let grads = y.sum().backward();
    let g = vidi::backend::to_host(x.grad(&grads).unwrap()).data;
    assert_eq!(g, mask, "the gradient of dropout is its mask");
}

/// TimeSformer's drop-path: `drop_path_rate` 1 over 2 layers is
/// `linspace(0, 1, 2)` = [0, 1]: in training layer 1 drops its three residual
/// branches for every sample, so (as in transformers, where the dropped
/// temporal branch still goes through `temporal_dense`, leaving its bias on
/// the patch tokens) the encoder's output is the final LayerNorm of
/// transformers' layer-0 output plus that bias; in evaluation it is
/// transformers' output.
#[test]
fn drop_path_drops_whole_residual_branches() {
    use vidi::model::Net;
    let tmp = tempfile::tempdir().unwrap();
    let only_path =
        serde_json::json!({"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "drop_path_rate": 1});
    let dir = with_config("timesformer_dropout", tmp.path(), only_path);
    let io = model_dir("timesformer_dropout").join("io.safetensors");
    let (_, layer0) = read_tensor(&io, "layer_0_output");
    let (_, last) = read_tensor(&io, "hidden_states_last");
    let weights = read_safetensors(&dir.join("model.safetensors")).unwrap();
    let (gamma, beta) = (&weights["timesformer.layernorm.weight"].data, &weights["timesformer.layernorm.bias"].data);
    let d = gamma.len();
    let bias = &weights["timesformer.encoder.layer.1.temporal_dense.bias"].data;
    let tokens = 1 + 4 * 16; // CLS + 4 frames x 16 patches
    let layer1: Vec<f32> = layer0
        .chunks(d)
        .enumerate()
        .flat_map(|(t, row)| row.iter().zip(bias).map(move |(v, b)| if t % tokens == 0 { *v } else { v + b }))
        .collect();
    let want: Vec<f32> = layer1
        .chunks(d)
        .flat_map(|row| {
            let mean = row.iter().map(|v| *v as f64).sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
            let rstd = 1.0 / (var + 1e-5).sqrt();
            row.iter()
                .enumerate()
                .map(move |(i, v)| ((*v as f64 - mean) * rstd * gamma[i] as f64 + beta[i] as f64) as f32)
        })
        .collect();
    for device in [cpu(), cpu().autodiff()] {
        let (model, _) = VideoModel::load(&dir, &LoadOptions::default(), &device).unwrap();
        let Net::Timesformer(m) = &model.net else { panic!("not a TimeSformer") };
        let x = fixture_input("timesformer_dropout", &device);
        for seed in [1, 2, 3] {
            let got = vidi::backend::to_host(m.encode(x.clone(), Some(seed))).data;
            let diff = max_abs_diff(&got, &want);
            assert!(diff <= 1e-4, "seed {seed}: layer 1 was not skipped (max |diff| {diff})");
        }
        let eval = vidi::backend::to_host(m.encode(x, None)).data;
        assert!(max_abs_diff(&eval, &last) <= 1e-4, "evaluation applied drop-path");
    }
}

/// Training passes are reproducible: the same seed gives the same logits and
/// gradients, on the CPU's autodiff route and off it (the masks depend on the
/// seed alone), and another seed other ones.
#[test]
fn training_passes_with_dropout_repeat_for_the_same_seed() {
    for name in DROPOUT_CONFIGS {
        let ad = cpu().autodiff();
        let (model, _) = VideoModel::load(&model_dir(name), &LoadOptions::default(), &ad).unwrap();
        let (plain, _) = VideoModel::load(&model_dir(name), &LoadOptions::default(), &cpu()).unwrap();
        let (shape, pixels) = read_tensor(&model_dir(name).join("io.safetensors"), "pixel_values");
        let shape5: [usize; 5] = shape.clone().try_into().unwrap();
        let step = |seed: u64| {
            let mut acc = vidi::train::optim::GradAccumulator::default();
            vidi::train::accumulate(&model, pixels.clone(), shape5, &[1, 3], 0.5, seed, &mut acc).unwrap().value()
        };
        let (a, b, c) = (step(7), step(7), step(8));
        assert_eq!(a.to_bits(), b.to_bits(), "{name}: same seed, another loss");
        assert_ne!(a.to_bits(), c.to_bits(), "{name}: another seed, same loss");
        let x =
            |d: &burn::tensor::Device| vidi::backend::to_device::<5>(HostTensor::new(shape.clone(), pixels.clone()), d);
        let on_ad = vidi::backend::to_host(model.forward_train(x(&ad), 7).unwrap().inner()).data;
        let off = vidi::backend::to_host(plain.forward_train(x(&cpu()), 7).unwrap()).data;
        let diff = max_abs_diff(&on_ad, &off);
        assert!(diff <= 1e-4, "{name}: the routes drew other masks (max |diff| {diff})");
    }
}

/// Config fields that change the computation are read for every architecture,
/// or refused in one line that names the field.
#[test]
fn config_fields_are_honoured_or_refused_by_name() {
    use vidi::model::config::{Activation, ModelConfig};
    let cfg = |name: &str, changes: serde_json::Value| {
        let path = model_dir(name).join("config.json");
        let mut raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for (k, v) in changes.as_object().unwrap() {
            raw[k] = v.clone();
        }
        ModelConfig::from_json(raw)
    };
    for name in ["videomae_meanpool", "timesformer", "vivit"] {
        for (act, want) in [
            ("gelu_python", Activation::Gelu),
            ("gelu_new", Activation::GeluTanh),
            ("gelu_pytorch_tanh", Activation::GeluTanh),
            ("quick_gelu", Activation::QuickGelu),
            ("relu", Activation::Relu),
            ("swish", Activation::Silu),
        ] {
            assert_eq!(cfg(name, serde_json::json!({"hidden_act": act})).unwrap().hidden_act, want, "{name} {act}");
        }
        let err = cfg(name, serde_json::json!({"hidden_act": "mish"})).unwrap_err();
        assert!(err.starts_with("hidden_act 'mish' is not supported"), "{err}");
        for field in ["hidden_dropout_prob", "attention_probs_dropout_prob"] {
            let err = cfg(name, serde_json::json!({field: 1.5})).unwrap_err();
            assert_eq!(err, format!("{field} must be a probability from 0 to 1, got 1.5"));
        }
        let c = cfg(name, serde_json::json!({"layer_norm_eps": 0.25, "qkv_bias": false})).unwrap();
        assert_eq!((c.layer_norm_eps, c.qkv_bias), (0.25, false), "{name}");
    }
    // TimeSformer's drop-path: linspace(0, rate, layers), as transformers builds its layers.
    let c = cfg("timesformer", serde_json::json!({"drop_path_rate": 0.3, "num_hidden_layers": 4})).unwrap();
    let rates: Vec<f64> = (0..4).map(|i| c.rates(i).path).collect();
    for (got, want) in rates.iter().zip([0.0, 0.1, 0.2, 0.3]) {
        assert!((got - want).abs() < 1e-7, "{rates:?}");
    }
    let err = cfg("timesformer", serde_json::json!({"drop_path_rate": -0.1})).unwrap_err();
    assert_eq!(err, "drop_path_rate must be a probability from 0 to 1, got -0.1");
    // A config that refuses names the field at load, in one line.
    let tmp = tempfile::tempdir().unwrap();
    let dir = with_config("vivit", tmp.path(), serde_json::json!({"hidden_act": "gelu_10"}));
    let err = VideoModel::load(&dir, &LoadOptions::default(), &cpu()).unwrap_err().to_string();
    assert!(err.contains("hidden_act 'gelu_10' is not supported") && !err.contains('\n'), "{err}");
}

/// A new head's weights are normal(0, `initializer_range`), as transformers initialises them.
#[test]
fn a_new_head_takes_the_configs_initializer_range() {
    let tmp = tempfile::tempdir().unwrap();
    let labels: Vec<String> = (0..50).map(|i| format!("l{i}")).collect();
    let opts = LoadOptions { labels: Some(labels), seed: 4 };
    for (range, dir) in [
        (0.02, model_dir("vivit")),
        (0.5, with_config("vivit", tmp.path(), serde_json::json!({"initializer_range": 0.5}))),
    ] {
        let (model, _) = VideoModel::load(&dir, &opts, &cpu()).unwrap();
        let w = &model.export_tensors()["classifier.weight"].data;
        let mean = w.iter().map(|v| *v as f64).sum::<f64>() / w.len() as f64;
        let std = (w.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
        assert!((std / range - 1.0).abs() < 0.1 && mean.abs() < 0.1 * range, "range {range}: std {std}, mean {mean}");
    }
}

/// V-JEPA 2: logits within 1e-4 of transformers' from safetensors and from a
/// pickle `.bin`, with the predictor's weights ignored and reported, the
/// config's `frames_per_clip` as the clip length and the processor of
/// `video_preprocessor_config.json`; its export reloads with the same logits.
#[test]
fn vjepa2_matches_transformers_and_skips_its_predictor() {
    use vidi::dataset::transforms::ProcessorSize;
    let tmp = tempfile::tempdir().unwrap();
    for name in ["vjepa2", "vjepa2_silu"] {
        let dir = model_dir(name);
        let io = dir.join("io.safetensors");
        let (got, want) = logits(&dir, &io);
        let diff = max_abs_diff(&got, &want);
        assert!(diff <= 1e-4, "{name}: max |logit diff| {diff}");
        let (model, report) = VideoModel::load(&dir, &LoadOptions::default(), &cpu()).unwrap();
        assert!(report.unused.is_empty(), "{name}: unused {:?}", report.unused);
        let all = read_safetensors(&dir.join("model.safetensors")).unwrap();
        let predictor: BTreeSet<&String> = all.keys().filter(|k| k.starts_with("vjepa2.predictor.")).collect();
        assert!(!predictor.is_empty());
        assert_eq!(report.ignored_pretraining.iter().collect::<BTreeSet<_>>(), predictor, "{name}: predictor keys");
        // Encoder and pooler intermediates too.
        let vidi::model::Net::Vjepa2(m) = &model.net else { panic!("not V-JEPA 2") };
        let enc = vidi::backend::to_host(m.encode(fixture_input(name, &cpu()), None)).data;
        assert!(max_abs_diff(&enc, &read_tensor(&io, "hidden_states_last").1) <= 1e-4, "{name}: encoder output");
        // frames_per_clip is the clip length; the processor is VJEPA2VideoProcessor's.
        assert_eq!(model.config.num_frames, 4);
        assert_eq!(model.config.image_size, 32);
        let err = model.forward_host(HostTensor::new(vec![1, 8, 3, 32, 32], vec![0.0; 8 * 3 * 32 * 32])).unwrap_err();
        assert!(err.to_string().contains("(batch, 4, 3, 32, 32)"), "{err}");
        let p = &model.processor;
        assert_eq!(p.size, ProcessorSize::ShortestEdge { shortest_edge: 36 }, "int(32 * 256 / 224)");
        assert_eq!(p.crop_size, (32, 32));
        assert_eq!((p.image_mean, p.image_std), ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]));
        // Export: the checkpoint's classifier keys (no predictor), reloading with the same logits.
        let out = tmp.path().join(name);
        model.export(&out).unwrap();
        assert!(out.join("video_preprocessor_config.json").exists());
        let ours = read_safetensors(&out.join("model.safetensors")).unwrap();
        let theirs = read_safetensors(&dir.join("model.safetensors")).unwrap();
        let want_keys: BTreeSet<&String> = theirs.keys().filter(|k| !k.starts_with("vjepa2.predictor.")).collect();
        assert_eq!(ours.keys().collect::<BTreeSet<_>>(), want_keys, "{name}");
        let (got, want) = logits(&out, &io);
        assert!(max_abs_diff(&got, &want) <= 1e-4, "{name} after export");
        let (reloaded, _) = VideoModel::load(&out, &LoadOptions::default(), &cpu()).unwrap();
        assert_eq!(reloaded.processor.size, p.size);
    }
    // The pickle checkpoint alone.
    let bin = tmp.path().join("vjepa2-bin");
    copy_without(&model_dir("vjepa2"), &bin, &["model.safetensors"]);
    let (got, want) = logits(&bin, &model_dir("vjepa2").join("io.safetensors"));
    assert!(max_abs_diff(&got, &want) <= 1e-4, "vjepa2 from pytorch_model.bin");
    // Dropout and drop-path (vjepa2_silu) are training's only.
    let (model, _) = VideoModel::load(&model_dir("vjepa2_silu"), &LoadOptions::default(), &cpu()).unwrap();
    let x = fixture_input("vjepa2_silu", &cpu());
    let (a, b) = (model.forward(x.clone()).unwrap(), model.forward_train(x, 5).unwrap());
    let (a, b) = (vidi::backend::to_host(a).data, vidi::backend::to_host(b).data);
    assert!(max_abs_diff(&a, &b) > 1e-3, "training with dropout changed nothing");
}

/// Clips of another frame count or picture size than the config's (4 frames of
/// 32x32), against transformers (tests/fixtures/models/interpolate.*, made by
/// make_interpolate.py there): V-JEPA 2 (rotary positions) and VideoMAE (its
/// sinusoid table recomputed) at 6 frames and at 48x32, TimeSformer (nearest-
/// interpolated position embeddings) at 48x32, VideoPrism (its learned spatial and
/// temporal tables resized, bilinear and antialiased) at 6 frames, at 48x32 and at
/// 2 frames of 16x24 (both shrunk); what transformers cannot run is refused in one
/// line, and `forward` itself still takes only the config's size.
#[test]
fn other_clip_sizes_match_transformers_interpolate_pos_encoding() {
    let io = fixtures().join("models/interpolate.safetensors");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("models/interpolate.json")).unwrap()).unwrap();
    let cases = meta["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for c in cases {
        let (name, input) = (c["model"].as_str().unwrap(), c["input"].as_str().unwrap());
        let (model, _) = VideoModel::load(&model_dir(name), &LoadOptions::default(), &cpu()).unwrap();
        let (shape, pixels) = read_tensor(&io, input);
        let (_, want) = read_tensor(&io, &format!("{name}.{input}"));
        let x = HostTensor::new(shape.clone(), pixels);
        let err = model.forward_host(x.clone()).unwrap_err();
        assert!(err.to_string().contains("(batch, 4, 3, 32, 32)"), "{name} {input}: {err}");
        let got = model.forward_host_with(x, true).unwrap_or_else(|e| panic!("{name} {input}: {e}"));
        let diff = max_abs_diff(&got.data, &want);
        assert!(diff <= 1e-4, "{name} {input}: max |logit diff| {diff}");
    }
    // Refusals: ViViT (transformers' interpolate_pos_encoding fails: recorded in interpolate.json),
    // TimeSformer with another frame count, sizes that are not whole patches.
    let refused = meta["refused_by_transformers"].as_array().unwrap();
    assert!(refused.iter().all(|r| r["model"] == "vivit") && refused.len() == 3);
    let refuse = |name: &str, input: &str, want: &str| {
        let (model, _) = VideoModel::load(&model_dir(name), &LoadOptions::default(), &cpu()).unwrap();
        let (shape, pixels) = read_tensor(&io, input);
        let err = model.forward_host_with(HostTensor::new(shape, pixels), true).unwrap_err().to_string();
        assert!(err.contains(want) && !err.contains('\n'), "{name} {input}: {err}");
    };
    refuse("vivit", "frames_6", "interpolate_pos_encoding fails for ViViT");
    refuse("vivit", "size_48x32", "interpolate_pos_encoding fails for ViViT");
    refuse("vivit", "frames_2_size_16x24", "interpolate_pos_encoding fails for ViViT");
    refuse("timesformer", "frames_6", "takes 4 frames (num_frames), got 6");
    let (model, _) = VideoModel::load(&model_dir("vjepa2"), &LoadOptions::default(), &cpu()).unwrap();
    for (shape, want) in [
        (vec![1, 5, 3, 32, 32], "a multiple of 2 frames (tubelet_size), got 5"),
        (vec![1, 4, 3, 36, 32], "multiples of 8 (patch_size), got 36x32"),
    ] {
        let n = shape.iter().product();
        let err = model.forward_host_with(HostTensor::new(shape, vec![0.0; n]), true).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
    let (model, _) = VideoModel::load(&model_dir("timesformer"), &LoadOptions::default(), &cpu()).unwrap();
    let err = model.forward_host_with(HostTensor::new(vec![1, 4, 3, 32, 8], vec![0.0; 4 * 3 * 32 * 8]), true);
    assert!(err.unwrap_err().to_string().contains("at least 2 patches wide"));
}

/// `problem_type` other than single-label classification (transformers' sigmoid
/// multi-label scores, regression) is refused by name, for every architecture.
#[test]
fn other_problem_types_are_refused() {
    use vidi::model::config::ModelConfig;
    for name in ["videomae_meanpool", "timesformer", "vivit", "vjepa2"] {
        let path = model_dir(name).join("config.json");
        let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for (pt, ok) in
            [("single_label_classification", true), ("multi_label_classification", false), ("regression", false)]
        {
            let mut r = raw.clone();
            r["problem_type"] = serde_json::json!(pt);
            match ModelConfig::from_json(r) {
                Ok(_) => assert!(ok, "{name}: {pt} accepted"),
                Err(e) => {
                    assert!(!ok, "{name}: {pt} refused: {e}");
                    assert!(e.starts_with(&format!("problem_type '{pt}' is not supported")), "{e}");
                }
            }
        }
    }
}
