//! Memory does not grow with the picture size: the real `vidi preview`,
//! `classify` and `train` on a 4000x4000 clip made by the ffmpeg CLI stay
//! under 1.5 GiB of peak resident memory (each measured alone, by `wait4`),
//! and the frames scaled down while decoding are the ones the ffmpeg CLI's
//! own area scaler makes, close to what the full pictures would give.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vidi::dataset::transforms::ImageProcessor;
use vidi::video::{decode_indices, DecodeOptions, FrameBound, RgbFrame};

use crate::{ffmpeg, ffmpeg_frame_rgb, fixtures, mean_abs_diff, run_measured};

/// The goal: any resolution fits in this.
const LIMIT_BYTES: u64 = 3 << 29; // 1.5 GiB

/// A 4000x4000 clip, 1 s at 10 fps, H.264 (24 MB a frame as YUV, 48 MB as RGB).
fn big_clip(dir: &Path) -> PathBuf {
    let path = dir.join("big.mp4");
    let src = "testsrc2=size=4000x4000:rate=10:duration=1";
    ffmpeg(
        &["-f", "lavfi", "-i", src, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
            .into_iter()
            .chain([path.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    path
}

/// Runs the real vidi with `args` on the CPU, checks it succeeded, and
/// returns "<command>: <peak> MiB" when it went over the limit.
fn over_limit(args: &[&str]) -> Option<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vidi"));
    cmd.args(args).env("VIDI_DEVICE", "cpu");
    let run = run_measured(&mut cmd, Duration::from_secs(300));
    assert!(run.status.success(), "vidi {args:?} failed: {}", run.stderr);
    let line = format!("vidi {}: peak RSS {} MiB", args.join(" "), run.peak_rss_bytes >> 20);
    eprintln!("{line}");
    (run.peak_rss_bytes >= LIMIT_BYTES).then_some(line)
}

#[test]
fn preview_classify_and_train_of_a_4000_pixel_square_clip_stay_under_1_5_gib() {
    let dir = tempfile::tempdir().unwrap();
    let clip = big_clip(dir.path());
    let clip = clip.to_str().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    let model = fixtures().join("models/videomae_cls");
    let model = model.to_str().unwrap();
    // A dataset of the clip: train and val, two classes (hard links, one file).
    let data = dir.path().join("data");
    for split in ["train", "val"] {
        for class in ["A", "B"] {
            let class_dir = data.join(split).join(class);
            std::fs::create_dir_all(&class_dir).unwrap();
            std::fs::hard_link(clip, class_dir.join("v.mp4")).unwrap();
        }
    }
    let data = data.to_str().unwrap();
    let (train_gif, strip, val_gif, run) = (d("train.gif"), d("strip.png"), d("val.gif"), d("run"));
    let runs: [&[&str]; 5] = [
        &["preview", clip, "--out", &train_gif, "--strip", &strip],
        &["preview", clip, "--preset", "val", "--out", &val_gif],
        &["classify", "--model", model, clip],
        &["classify", "--model", model, "--sampling", "multi", "--clips", "8", clip],
        &["train", "--data", data, "--model", model, "--out", &run, "--max-steps", "1", "--batch-size", "2"],
    ];
    let over: Vec<String> = runs.iter().filter_map(|args| over_limit(args)).collect();
    assert!(over.is_empty(), "over 1536 MiB resident:\n{}", over.join("\n"));
}

/// The frame `n` of `path` as the ffmpeg CLI decodes it, scaled to `w x h`
/// by its area-averaging scaler in YUV, then turned to RGB.
fn ffmpeg_area_frame(path: &Path, n: usize, w: u32, h: u32) -> RgbFrame {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-vf", &format!("select=eq(n\\,{n}),scale={w}:{h}:flags=area,format=yuv420p")])
        .args(["-vsync", "passthrough", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    RgbFrame { width: w, height: h, data: out.stdout, time_secs: None }
}

/// What the bound does to a 4000x4000 picture, checked against the ffmpeg
/// CLI: the frame scaled while decoding is FFmpeg's area average at the
/// documented size, and the processor's output from it is within a grey
/// level, on average, of the processor run on the full picture.
#[test]
fn frames_scaled_while_decoding_match_ffmpeg_and_stay_close_to_the_full_picture() {
    let dir = tempfile::tempdir().unwrap();
    let clip = big_clip(dir.path());
    let processor = ImageProcessor::default(); // shortest_edge 224, centre crop 224
    let bound = processor.frame_bound().expect("the processor resizes");
    assert_eq!(bound, FrameBound { short_side: 224 });
    let opts = DecodeOptions { bound: Some(bound), ..Default::default() };
    let ours = decode_indices(&clip, &[3], &opts).unwrap().remove(0);
    assert_eq!((ours.width, ours.height), (896, 896), "short side 4 x 224");
    let area = ffmpeg_area_frame(&clip, 3, 896, 896);
    let mean = mean_abs_diff(&ours.data, &area.data);
    assert!(mean < 1.0, "the scaled frame differs from ffmpeg's area scaling by {mean} on average");

    // The processor on the full picture (decoded by the ffmpeg CLI) and on ours.
    let full = RgbFrame { width: 4000, height: 4000, data: ffmpeg_frame_rgb(&clip, 3, &[]), time_secs: None };
    let bytes = |f: &RgbFrame| -> Vec<u8> {
        let p = ImageProcessor { do_rescale: false, do_normalize: false, ..processor.clone() };
        p.apply(std::slice::from_ref(f)).unwrap().data.iter().map(|v| *v as u8).collect()
    };
    let (exact, approx) = (bytes(&full), bytes(&ours));
    let mean = mean_abs_diff(&exact, &approx);
    eprintln!("processor output, full picture vs scaled while decoding: mean |diff| {mean:.3} grey levels");
    assert!(mean < 1.0, "scaling while decoding moved the processor's output by {mean} grey levels on average");
    // And without the bound nothing changes size.
    let plain = decode_indices(&clip, &[3], &DecodeOptions::default()).unwrap().remove(0);
    assert_eq!((plain.width, plain.height), (4000, 4000));
}
