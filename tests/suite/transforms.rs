//! Transform parity against PyTorchVideo / torchvision / transformers outputs
//! (tests/fixtures/transforms, made by make_reference.py there).

use rand::SeedableRng;
use serde_json::Value;

use vidi::dataset::presets::{Preset, ValPreset};
use vidi::dataset::sampler::{pipeline_indices, uniform_temporal_subsample, ClipSampler};
use vidi::dataset::transforms::{Clip, ImageProcessor, ProcessorSize};
use vidi::video::RgbFrame;

use crate::{fixtures, max_abs_diff, read_tensor};

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("transforms/manifest.json")).unwrap()).unwrap()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn u(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

fn f3(v: &Value) -> [f32; 3] {
    let a: Vec<f32> = v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    [a[0], a[1], a[2]]
}

/// (C, T, H, W) data -> Clip (T, C, H, W).
fn clip_from_cthw(shape: &[usize], data: &[f32]) -> Clip {
    let (c, t, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    let mut out = vec![0f32; data.len()];
    for ci in 0..c {
        for ti in 0..t {
            let src = (ci * t + ti) * h * w;
            let dst = (ti * c + ci) * h * w;
            out[dst..dst + h * w].copy_from_slice(&data[src..src + h * w]);
        }
    }
    Clip { t, c, h, w, data: out }
}

/// Clip (T, C, H, W) -> (C, T, H, W) data.
fn to_cthw(clip: &Clip) -> (Vec<usize>, Vec<f32>) {
    let (t, c, h, w) = (clip.t, clip.c, clip.h, clip.w);
    let mut out = vec![0f32; clip.data.len()];
    for ci in 0..c {
        for ti in 0..t {
            let dst = (ci * t + ti) * h * w;
            let src = (ti * c + ci) * h * w;
            out[dst..dst + h * w].copy_from_slice(&clip.data[src..src + h * w]);
        }
    }
    (vec![c, t, h, w], out)
}

fn frames_from_thwc(shape: &[usize], data: &[f32]) -> Vec<RgbFrame> {
    let (t, h, w) = (shape[0], shape[1], shape[2]);
    (0..t)
        .map(|i| RgbFrame {
            width: w as u32,
            height: h as u32,
            data: data[i * h * w * 3..(i + 1) * h * w * 3].iter().map(|v| *v as u8).collect(),
            time_secs: None,
        })
        .collect()
}

#[test]
fn frame_indices_and_clip_samplers_match_exactly() {
    let m = manifest();
    let mut n = 0;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for case in m["cases"].as_array().unwrap() {
        let p = &case["params"];
        let got: Option<Value> = match case["op"].as_str().unwrap() {
            "uniform_temporal_subsample" => Some(serde_json::json!(uniform_temporal_subsample(u(&p["t"]), u(&p["n"])))),
            "pipeline_indices" => {
                Some(serde_json::json!(pipeline_indices(u(&p["num_frames"]), u(&p["frame_sampling_rate"]))))
            }
            "uniform_clip_sampler" => {
                let s = ClipSampler::Uniform { clip_duration: p["clip_duration"].as_f64().unwrap() };
                Some(windows(&s.clips(p["video_duration"].as_f64().unwrap(), &mut rng)))
            }
            "constant_clips_per_video_sampler" => {
                let s = ClipSampler::ConstantClipsPerVideo {
                    clip_duration: p["clip_duration"].as_f64().unwrap(),
                    clips_per_video: u(&p["clips_per_video"]),
                };
                Some(windows(&s.clips(p["video_duration"].as_f64().unwrap(), &mut rng)))
            }
            _ => None,
        };
        let Some(got) = got else { continue };
        if case["op"].as_str().unwrap().ends_with("sampler") {
            let want = case["expected"].as_array().unwrap();
            let got = got.as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{}", case["name"]);
            for (g, w) in got.iter().zip(want) {
                for k in 0..2 {
                    let (g, w) = (g[k].as_f64().unwrap(), w[k].as_f64().unwrap());
                    assert!((g - w).abs() < 1e-9, "{}: {g} vs {w}", case["name"]);
                }
            }
        } else {
            assert_eq!(indices(&got), indices(&case["expected"]), "{}", case["name"]);
        }
        n += 1;
    }
    assert!(n >= 20, "only {n} index cases");
}

fn windows(w: &[vidi::dataset::ClipWindow]) -> Value {
    serde_json::json!(w.iter().map(|c| [c.start_secs, c.end_secs]).collect::<Vec<_>>())
}

#[test]
fn pixel_transforms_match_within_one_level() {
    let m = manifest();
    let dir = fixtures().join("transforms");
    let mut n = 0;
    for case in m["cases"].as_array().unwrap() {
        let op = case["op"].as_str().unwrap();
        let p = &case["params"];
        let name = case["name"].as_str().unwrap();
        let Some(out_file) = case["file"].as_str() else {
            continue;
        };
        let in_file = dir.join(case["input_file"].as_str().unwrap());
        let (in_shape, input) = read_tensor(&in_file, case["input"].as_str().unwrap());
        let (want_shape, want) = read_tensor(&dir.join(out_file), case["output"].as_str().unwrap());
        // Tolerance: one 8-bit level, scaled by 1/std for normalised outputs.
        let (got_shape, got, tol) = match op {
            "short_side_scale" | "resize" | "center_crop" | "crop" | "hflip" | "normalize" => {
                let clip = clip_from_cthw(&in_shape, &input);
                let (out, tol) = match op {
                    "short_side_scale" => (clip.short_side_scale(u(&p["size"])).unwrap(), 1.0 / 255.0),
                    "resize" => (
                        clip.resize(u(&p["height"]), u(&p["width"]), p["antialias"].as_bool().unwrap()).unwrap(),
                        1.0 / 255.0,
                    ),
                    "center_crop" => (clip.center_crop(u(&p["size"]), u(&p["size"])).unwrap(), 0.0),
                    "crop" => (clip.crop(u(&p["top"]), u(&p["left"]), u(&p["height"]), u(&p["width"])).unwrap(), 0.0),
                    "hflip" => (clip.hflip(), 0.0),
                    _ => (clip.normalize(&f3(&p["mean"]), &f3(&p["std"])), 1e-5),
                };
                let (s, d) = to_cthw(&out);
                (s, d, tol)
            }
            "hf_image_processor" => {
                let frames = frames_from_thwc(&in_shape, &input);
                let size = if p["size"]["shortest_edge"].is_u64() {
                    ProcessorSize::ShortestEdge { shortest_edge: u(&p["size"]["shortest_edge"]) }
                } else {
                    ProcessorSize::HeightWidth { height: u(&p["size"]["height"]), width: u(&p["size"]["width"]) }
                };
                let proc = ImageProcessor {
                    do_resize: p["do_resize"].as_bool().unwrap(),
                    size,
                    do_center_crop: p["do_center_crop"].as_bool().unwrap(),
                    crop_size: (u(&p["crop_size"]["height"]), u(&p["crop_size"]["width"])),
                    do_rescale: p["do_rescale"].as_bool().unwrap(),
                    rescale_factor: p["rescale_factor"].as_f64().unwrap() as f32,
                    offset: p["offset"].as_bool().unwrap_or(false),
                    do_normalize: p["do_normalize"].as_bool().unwrap(),
                    image_mean: f3(&p["image_mean"]),
                    image_std: f3(&p["image_std"]),
                    ..Default::default()
                };
                let out = proc.apply(&frames).unwrap();
                let min_std = proc.image_std.iter().cloned().fold(f32::MAX, f32::min);
                let scale = p["rescale_factor"].as_f64().unwrap() as f32;
                (vec![out.t, out.c, out.h, out.w], out.data, scale / min_std * 1.01)
            }
            "guide_val_transform" => {
                let clip = clip_from_cthw(&in_shape, &input);
                let frames = clip.rescale(1.0 / 255.0, 0.0).to_rgb_frames();
                let preset = Preset::Val(ValPreset {
                    num_frames: u(&p["num_frames"]),
                    mean: f3(&p["mean"]),
                    std: f3(&p["std"]),
                    resize: (u(&p["resize"][0]), u(&p["resize"][1])),
                    antialias: p["antialias"].as_bool().unwrap(),
                    ..Default::default()
                });
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
                let out = preset.apply(&frames, &mut rng).unwrap();
                let (s, d) = to_cthw(&out);
                (s, d, 1.0 / 255.0 / 0.224 * 1.01)
            }
            other => panic!("unknown op {other} in {name}"),
        };
        assert_eq!(got_shape, want_shape, "{name}: shape");
        let diff = max_abs_diff(&got, &want);
        assert!(diff <= tol.max(1e-5), "{name}: max diff {diff} > {tol}");
        n += 1;
    }
    assert!(n >= 14, "only {n} pixel cases");
}
