//! Checkpoints that would give silently wrong results are refused by the real
//! `vidi classify` / `vidi forward` with one `error:` line naming the tensor or
//! the field: each case is a committed fixture model (which loads and runs)
//! with one thing broken in a copy.

use std::path::{Path, PathBuf};
use std::process::Command;

use vidi::model::weights::{read_safetensors, write_safetensors, HostTensor};

use crate::fixtures;

/// A copy of the fixture model `name` (config, processor, safetensors) under `tmp/dir`.
fn copy_model(name: &str, tmp: &Path, dir: &str) -> PathBuf {
    let src = fixtures().join("models").join(name);
    let dst = tmp.join(dir);
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["config.json", "preprocessor_config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    dst
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn edit_weights(dir: &Path, edit: impl FnOnce(&mut std::collections::BTreeMap<String, HostTensor>)) {
    let file = dir.join("model.safetensors");
    let mut w = read_safetensors(&file).unwrap();
    edit(&mut w);
    write_safetensors(&file, &w).unwrap();
}

fn vidi(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vidi")).args(args).env("VIDI_DEVICE", "cpu").output().expect("run vidi")
}

/// `vidi forward` on `model` with the fixture's own pixel values, writing `out`.
fn forward(model: &Path, fixture: &str, out: &Path) -> std::process::Output {
    let px = fixtures().join("models").join(fixture).join("io.safetensors");
    let (model, px, out) = (model.to_str().unwrap(), px.to_str().unwrap(), out.to_str().unwrap());
    vidi(&["forward", "--model", model, "--pixel-values", px, "--out", out])
}

/// `vidi classify` on a committed clip.
fn classify(model: &Path) -> std::process::Output {
    let clip = crate::clip("short_1s_32frames_part_0.mp4");
    vidi(&["classify", "--model", model.to_str().unwrap(), clip.to_str().unwrap()])
}

/// The run failed with exactly one `error:` line, printed nothing on stdout;
/// returns that line.
fn refused(o: &std::process::Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{what}: exit 0\nstdout: {}\nstderr: {stderr}", String::from_utf8_lossy(&o.stdout));
    assert!(o.stdout.is_empty(), "{what}: printed {}", String::from_utf8_lossy(&o.stdout));
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{what}: {stderr}");
    assert_eq!(stderr.lines().last(), Some(errors[0]), "{what}: {stderr}");
    errors[0].to_string()
}

fn classifies(o: &std::process::Output, what: &str) {
    assert!(o.status.success(), "{what}: {}", String::from_utf8_lossy(&o.stderr));
    assert!(!o.stdout.is_empty(), "{what}: no predictions");
}

/// A NaN or an infinity in an attention query or key weight is refused on
/// load, naming the tensor and the file (the scores it would give are noise).
#[test]
fn non_finite_weights_are_refused_naming_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("videomae_meanpool", "videomae.encoder.layer.0.attention.attention.query.weight", f32::NAN),
        ("vivit", "vivit.encoder.layer.1.attention.attention.key.weight", f32::INFINITY),
        ("timesformer", "timesformer.encoder.layer.0.temporal_attention.attention.qkv.weight", f32::NEG_INFINITY),
    ];
    for (name, key, bad) in cases {
        let dir = copy_model(name, tmp.path(), name);
        // The copy runs as it is.
        let out = tmp.path().join(format!("{name}-logits.safetensors"));
        let o = forward(&dir, name, &out);
        assert!(o.status.success() && out.exists(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        std::fs::remove_file(&out).unwrap();
        edit_weights(&dir, |w| {
            let t = w.get_mut(key).unwrap_or_else(|| panic!("{name} has no {key}"));
            t.data[7] = bad;
            t.data[40] = bad;
        });
        let line = refused(&forward(&dir, name, &out), name);
        let file = dir.join("model.safetensors");
        assert!(line.contains(&format!("{}: weight '{key}' holds 2 NaN or infinite values", file.display())), "{line}");
        assert!(!out.exists(), "{name}: logits written from a damaged model");
    }
}

/// A zero or non-finite `image_std`, or a non-finite `image_mean` (1e39 is
/// infinite as f32), would turn every pixel into NaN or infinity: refused,
/// naming the field.
#[test]
fn normalisation_that_cannot_work_is_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("image_std", serde_json::json!([0, 0, 0]), "image_std must be non-zero, finite numbers"),
        ("image_std", serde_json::json!([0.2, 0.0, 0.2]), "image_std must be non-zero, finite numbers"),
        ("image_std", serde_json::json!(1e39), "image_std must be non-zero, finite numbers"),
        ("image_mean", serde_json::json!([1e39, 0.4, 0.4]), "image_mean must be finite numbers"),
    ];
    let good = copy_model("videomae_meanpool", tmp.path(), "good");
    classifies(&classify(&good), "unchanged copy");
    for (i, (key, value, want)) in cases.into_iter().enumerate() {
        let dir = copy_model("videomae_meanpool", tmp.path(), &format!("case{i}"));
        let path = dir.join("preprocessor_config.json");
        edit_json(&path, |v| v[key] = value.clone());
        let line = refused(&classify(&dir), key);
        assert!(line.contains(&format!("{}: {want}", path.display())), "{line}");
    }
}

/// A classifier of 0 rows, or a config whose labels do not match the
/// classifier's rows, is refused (not an empty result, not labels renamed).
#[test]
fn label_counts_that_disagree_with_the_classifier_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // No labels at all.
    let dir = copy_model("videomae_meanpool", tmp.path(), "zero");
    edit_weights(&dir, |w| {
        w.insert("classifier.weight".into(), HostTensor::new(vec![0, 32], vec![]));
        w.insert("classifier.bias".into(), HostTensor::new(vec![0], vec![]));
    });
    edit_json(&dir.join("config.json"), |v| {
        v["id2label"] = serde_json::json!({});
        v["label2id"] = serde_json::json!({});
    });
    let line = refused(&classify(&dir), "zero labels");
    let file = dir.join("model.safetensors");
    assert!(line.contains(&format!("{}: the classifier (classifier.weight) has 0 rows", file.display())), "{line}");

    // id2label with 1 name for the 5-row classifier; then num_labels 3 and no id2label.
    for (edit, said) in [
        (serde_json::json!({"id2label": {"0": "only"}, "label2id": {"only": 0}}), "id2label names 1 label,"),
        (serde_json::json!({"num_labels": 3}), "num_labels is 3,"),
    ] {
        let dir = copy_model("vivit", tmp.path(), said.split(' ').next().unwrap_or("x"));
        let config = dir.join("config.json");
        edit_json(&config, |v| {
            let o = v.as_object_mut().unwrap();
            o.remove("id2label");
            o.remove("label2id");
            for (k, x) in edit.as_object().unwrap() {
                o.insert(k.clone(), x.clone());
            }
        });
        let line = refused(&classify(&dir), said);
        let want = format!("{}: {said} but the classifier in model.safetensors has 5 rows", config.display());
        assert!(line.contains(&want), "{line}\nwanted: {want}");
    }
}

/// A config with fewer layers than the weights hold would run a shallower
/// model than the checkpoint: refused, naming the unused layers' weights.
#[test]
fn encoder_layers_past_num_hidden_layers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, prefix) in [("videomae_cls", "videomae"), ("timesformer", "timesformer"), ("vivit", "vivit")] {
        let dir = copy_model(name, tmp.path(), name);
        let config = dir.join("config.json");
        edit_json(&config, |v| v["num_hidden_layers"] = serde_json::json!(1));
        let line = refused(&classify(&dir), name);
        let want = format!(
            "{}: num_hidden_layers is 1, but model.safetensors also holds the weights of encoder layer 1 \
             ({prefix}.encoder.layer.1.*)",
            config.display()
        );
        assert!(line.contains(&want), "{line}\nwanted: {want}");
        assert!(line.contains("set num_hidden_layers to 2"), "{line}");
    }
}

/// A key that is there with the wrong JSON type is an error naming it, never
/// the default (`"hidden_size": "48"` once became 768).
#[test]
fn config_values_of_the_wrong_type_are_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("config.json", "hidden_size", serde_json::json!("48"), "hidden_size must be a whole number, got \"48\""),
        ("config.json", "num_hidden_layers", serde_json::json!(1.5), "num_hidden_layers must be a whole number"),
        ("config.json", "qkv_bias", serde_json::json!("true"), "qkv_bias must be true or false, got \"true\""),
        ("config.json", "layer_norm_eps", serde_json::json!("1e-12"), "layer_norm_eps must be a number"),
        ("config.json", "hidden_act", serde_json::json!(1), "hidden_act must be a string, got 1"),
        ("config.json", "id2label", serde_json::json!(["a", "b"]), "id2label must be an object"),
        ("preprocessor_config.json", "do_normalize", serde_json::json!("yes"), "do_normalize must be true or false"),
        ("preprocessor_config.json", "image_mean", serde_json::json!("0.5"), "image_mean must be three numbers"),
        ("preprocessor_config.json", "size", serde_json::json!({"longest": 32}), "size must be a number,"),
    ];
    for (i, (file, key, value, want)) in cases.into_iter().enumerate() {
        let dir = copy_model("videomae_meanpool", tmp.path(), &format!("case{i}"));
        let path = dir.join(file);
        edit_json(&path, |v| v[key] = value.clone());
        let line = refused(&classify(&dir), key);
        assert!(line.contains(&format!("{}: {want}", path.display())), "{line}\nwanted: {want}");
    }
}
