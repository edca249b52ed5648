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
    for name in CLASSIFIERS {
        let dir = model_dir(name);
        let (got, want) = logits(&dir, &dir.join("io.safetensors"));
        let diff = max_abs_diff(&got, &want);
        assert!(diff <= 1e-4, "{name}: max |logit diff| {diff}");
    }
}

#[test]
fn logits_match_from_pickle_and_sharded_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    for name in CLASSIFIERS {
        let dir = model_dir(name);
        // Pickle only.
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
    for name in CLASSIFIERS {
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
    for name in CLASSIFIERS {
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
        // Central differences in f32 on the inference model, at a few pixels.
        let plain = cpu();
        let (m0, _) = VideoModel::load(&dir, &LoadOptions::default(), &plain).unwrap();
        let f = |p: &Vec<f32>| -> f64 {
            m0.forward_host(HostTensor::new(shape.clone(), p.clone())).unwrap().data.iter().map(|v| *v as f64).sum()
        };
        // At the start, a third in and the end: the pixel of the nearest 64 that moves the logits most.
        let n = pixels.len();
        let pick = |c: usize| {
            (c.saturating_sub(32)..(c + 32).min(n)).max_by(|&i, &j| gx[i].abs().total_cmp(&gx[j].abs())).unwrap()
        };
        for idx in [pick(0), pick(n / 3), pick(n - 1)] {
            let h = 1e-2f32;
            let (mut a, mut b) = (pixels.clone(), pixels.clone());
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
}
