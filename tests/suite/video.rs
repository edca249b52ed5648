//! Decoding real and generated files, checked against ffprobe, the ffmpeg CLI and PyAV.

use std::path::{Path, PathBuf};

use vidi::video::{decode_all, decode_indices, decode_time_range, probe, probe_stream, DecodeOptions, VideoError};

use crate::{clip, ffmpeg, ffmpeg_frame_rgb, ffprobe_count, fixtures, mean_abs_diff, read_tensor};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Probe agrees with `ffprobe -count_frames` on the chosen stream, and a
/// middle frame decodes to what the ffmpeg CLI decodes.
fn check_against_ffmpeg(path: &Path, stream_spec: &str) {
    let info = probe(path).unwrap_or_else(|e| panic!("{e}"));
    let (frames, w, h, codec) = ffprobe_count(path, stream_spec);
    assert_eq!(info.frames, frames, "{}: frame count vs ffprobe", path.display());
    assert_eq!((info.width, info.height), (w, h), "{}", path.display());
    assert_eq!(info.codec, codec, "{}", path.display());
    let mid = frames / 2;
    let ours = decode_indices(path, &[mid], &DecodeOptions { autorotate: false, ..Default::default() }).unwrap();
    let reference = ffmpeg_frame_rgb(path, mid, &["-noautorotate"]);
    assert_eq!(ours[0].data.len(), reference.len(), "{}", path.display());
    let mean = mean_abs_diff(&ours[0].data, &reference);
    assert!(mean < 1.0, "{}: frame {mid} differs from the ffmpeg CLI by {mean} on average", path.display());
}

#[test]
fn committed_clips_match_ffprobe() {
    for name in ["v_ApplyEyeMakeup_g01_c01.avi", "mmaction2_demo.mp4", "short_1s_32frames_part_0.mp4", "asl_thanks.mkv"]
    {
        check_against_ffmpeg(&clip(name), "v:0");
    }
}

/// The first video stream is read, as transformers (through PyAV's
/// `streams.video[0]`) and ffprobe's `v:0` read it; the file says it has a
/// choice, and `--stream N` reads another.
#[test]
fn multi_stream_file_reads_the_first_video_stream_like_pyav_and_ffprobe() {
    let path = clip("nasa_13013_2video_2audio_2subs.mp4");
    let info = probe(&path).unwrap();
    assert_eq!((info.video_streams, info.stream_index), (2, 0));
    let (frames0, w0, h0, codec0) = ffprobe_count(&path, "v:0");
    assert_eq!((info.frames, info.width, info.height, info.codec.as_str()), (frames0, w0, h0, codec0.as_str()));
    // Its pictures are the ffmpeg CLI's `0:v:0` (the CLI upsamples chroma
    // bicubically, vidi bilinearly as PyAV does: a mean difference near 1.5).
    let ours = decode_indices(&path, &[100], &DecodeOptions::default()).unwrap();
    let mean = mean_abs_diff(&ours[0].data, &ffmpeg_frame_rgb(&path, 100, &[]));
    assert!(mean < 2.5, "frame 100 differs from the ffmpeg CLI's v:0 by {mean} on average");
    assert!(
        info.warnings.iter().any(|w| w.contains("2 video streams (0, 3)") && w.contains("--stream")),
        "{:?}",
        info.warnings
    );
    // The second video stream, by its container index, is ffprobe's v:1.
    let other = probe_stream(&path, Some(3)).unwrap();
    let (frames, w, h, codec) = ffprobe_count(&path, "v:1");
    assert_eq!((other.stream_index, other.frames, other.width, other.height), (3, frames, w, h));
    assert_eq!(other.codec, codec);
    let f = decode_indices(&path, &[0], &DecodeOptions { stream: Some(3), ..Default::default() }).unwrap();
    assert_eq!((f[0].width, f[0].height), (w, h));
    // An audio stream is refused, naming the video streams.
    for bad in [1, 9] {
        let e = decode_indices(&path, &[0], &DecodeOptions { stream: Some(bad), ..Default::default() }).unwrap_err();
        assert!(matches!(e, VideoError::BadStream { .. }), "{e}");
        assert!(e.to_string().contains("its video streams: 0, 3"), "{e}");
    }
    // The CLI: probe says which stream it read; classify reads the same one.
    let bin = env!("CARGO_BIN_EXE_vidi");
    let o = std::process::Command::new(bin).args(["probe", "--json", "--stream", "3"]).arg(&path).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v[0]["stream_index"].as_u64(), v[0]["frames"].as_u64()), (Some(3), Some(frames as u64)));
    let o = std::process::Command::new(bin).args(["probe", "--stream", "1"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.lines().count() == 1 && err.contains("stream 1 is not a video stream"), "{err}");
}

#[test]
fn frames_match_pyav() {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("decode/decode.json")).unwrap()).unwrap();
    let st = fixtures().join("decode/decode.safetensors");
    let mut checked = 0;
    for (name, entry) in json["frames"].as_object().expect("frames") {
        let video = fixtures().join(entry["video"].as_str().or(entry["clip"].as_str()).expect("video path"));
        let index = entry["index"].as_u64().expect("index") as usize;
        let (shape, want) = read_tensor(&st, name);
        let got = decode_indices(&video, &[index], &DecodeOptions::default()).unwrap();
        assert_eq!(shape, vec![got[0].height as usize, got[0].width as usize, 3]);
        let got: Vec<f32> = got[0].data.iter().map(|b| *b as f32).collect();
        let max = crate::max_abs_diff(&got, &want);
        assert!(max <= 2.0, "{name}: max diff {max} vs PyAV");
        checked += 1;
    }
    assert!(checked >= 3, "decode.json lists {checked} frames");
}

#[test]
fn seeking_gives_the_same_frames_as_decoding_from_the_start() {
    let dir = tmp();
    let path = dir.path().join("gop10.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=12",
        "-c:v",
        "libx264",
        "-g",
        "10",
        "-bf",
        "2",
        "-pix_fmt",
        "yuv420p",
        path.to_str().unwrap(),
    ]);
    let all = decode_all(&path, &DecodeOptions::default()).unwrap();
    assert_eq!(all.len(), 300);
    let wanted = [250, 120, 200, 120, 299];
    let got = decode_indices(&path, &wanted, &DecodeOptions::default()).unwrap();
    for (i, w) in wanted.iter().enumerate() {
        assert_eq!(got[i].data, all[*w].data, "frame {w}");
    }
    // And frame 250 is what the ffmpeg CLI decodes there.
    let reference = ffmpeg_frame_rgb(&path, 250, &[]);
    let mean = mean_abs_diff(&got[0].data, &reference);
    assert!(mean < 1.0, "mean diff {mean}");
}

/// Whole-video sampling skips frames nothing needs but returns exactly the
/// frames a full decode gives at `linspace(0, frames - 1, n)`.
#[test]
fn uniform_sampling_equals_full_decoding() {
    let dir = tmp();
    let path = dir.path().join("bframes.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=128x96:rate=25:duration=8",
        "-c:v",
        "libx264",
        "-bf",
        "3",
        "-pix_fmt",
        "yuv420p",
        path.to_str().unwrap(),
    ]);
    for file in [path.clone(), clip("v_ApplyEyeMakeup_g01_c01.avi"), clip("mmaction2_demo.mp4")] {
        let all = decode_all(&file, &DecodeOptions::default()).unwrap();
        for threads in [1, 2] {
            let (got, total) =
                vidi::video::decode_uniform(&file, 16, &DecodeOptions { threads, ..Default::default() }).unwrap();
            assert_eq!(total, all.len(), "{}", file.display());
            let want = vidi::dataset::sampler::whole_video_indices(all.len(), 16);
            for (g, i) in got.iter().zip(&want) {
                assert_eq!(g.data, all[*i].data, "{} frame {i} ({threads} threads)", file.display());
            }
        }
    }
}

/// Every format the issue lists, made by the ffmpeg CLI, probes to ffprobe's count and decodes.
#[test]
fn generated_formats_decode() {
    let dir = tmp();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let src = "testsrc2=size=320x240:rate=25:duration=2";
    let cases: Vec<(String, Vec<String>)> = vec![
        // UCF101's format: xvid in AVI, 29.97 fps, mp3 audio.
        (
            d("xvid.avi"),
            vec![
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=30000/1001:duration=2",
                "-f",
                "lavfi",
                "-i",
                "sine=duration=2",
                "-c:v",
                "mpeg4",
                "-vtag",
                "XVID",
                "-c:a",
                "libmp3lame",
                "-shortest",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        (d("mpeg4.mp4"), vec!["-f", "lavfi", "-i", src, "-c:v", "mpeg4"].into_iter().map(String::from).collect()),
        (
            d("vp9.webm"),
            vec!["-f", "lavfi", "-i", src, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            d("raw.m4v"),
            vec!["-f", "lavfi", "-i", src, "-c:v", "mpeg4", "-f", "m4v"].into_iter().map(String::from).collect(),
        ),
        (
            d("h264.mkv"),
            vec!["-f", "lavfi", "-i", src, "-c:v", "libx264", "-pix_fmt", "yuv420p"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            d("full_hd.mp4"),
            vec![
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=25:duration=0.4",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        // Odd size with 4:4:4 chroma: rows are padded, so stride must be honoured.
        (
            d("odd.mp4"),
            vec![
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=161x97:rate=25:duration=1",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv444p",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        // Variable frame rate: the first 10 frames at 25 fps, the rest at 12.5.
        (
            d("vfr.mp4"),
            vec![
                "-f",
                "lavfi",
                "-i",
                src,
                "-vf",
                "setpts='if(lt(N,10),N,10+(N-10)*2)/(25*TB)'",
                "-vsync",
                "vfr",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
    ];
    for (out, mut args) in cases {
        args.push(out.clone());
        ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
        check_against_ffmpeg(Path::new(&out), "v:0");
    }
    let vfr = probe(Path::new(&d("vfr.mp4"))).unwrap();
    assert!(vfr.variable_frame_rate, "vfr.mp4 not flagged as variable frame rate");
    let raw = probe(Path::new(&d("raw.m4v"))).unwrap();
    assert_eq!(raw.frames, 50);
    assert!(raw.duration_s > 1.9 && raw.duration_s < 2.1, "raw stream duration {}", raw.duration_s);
    let xvid = probe(Path::new(&d("xvid.avi"))).unwrap();
    assert_eq!(xvid.fps_rational, [30000, 1001]);
    assert!(xvid.audio_duration_s.is_some());
}

#[test]
fn rotation_metadata_is_applied_like_the_ffmpeg_cli() {
    let dir = tmp();
    let plain = dir.path().join("plain.mp4");
    let rotated = dir.path().join("rotated.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x96:rate=25:duration=0.4",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv444p",
        plain.to_str().unwrap(),
    ]);
    ffmpeg(&["-i", plain.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated.to_str().unwrap()]);
    let info = probe(&rotated).unwrap();
    // ffprobe reports the matrix as 90 degrees counter-clockwise; the ffmpeg
    // CLI then turns the picture 90 degrees counter-clockwise (270 clockwise).
    assert_eq!(info.rotation, 270);
    assert_eq!((info.display_width(), info.display_height()), (96, 160));
    let ours = decode_indices(&rotated, &[3], &DecodeOptions::default()).unwrap();
    assert_eq!((ours[0].width, ours[0].height), (96, 160));
    // The ffmpeg CLI autorotates by default: compare pixels.
    let reference = ffmpeg_frame_rgb(&rotated, 3, &[]);
    let mean = mean_abs_diff(&ours[0].data, &reference);
    assert!(mean < 1.0, "rotated frame differs from ffmpeg's by {mean}");
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

#[test]
fn bad_files_give_typed_errors() {
    let dir = tmp();
    assert!(matches!(probe(&dir.path().join("missing.mp4")), Err(VideoError::NotFound { .. })));
    let junk = write(&dir.path().join("junk.mp4"), &[7u8; 5000]);
    assert!(matches!(probe(&junk), Err(VideoError::NotAVideo { .. })), "{:?}", probe(&junk));
    let empty = write(&dir.path().join("empty.avi"), b"");
    assert!(matches!(probe(&empty), Err(VideoError::NotAVideo { .. })));
    let audio = dir.path().join("audio.mp3");
    ffmpeg(&["-f", "lavfi", "-i", "sine=duration=1", audio.to_str().unwrap()]);
    assert!(matches!(probe(&audio), Err(VideoError::NoVideoStream { .. })));
    assert!(matches!(probe(dir.path()), Err(VideoError::NotAVideo { .. })));
    // A header with no decodable frame.
    let src = std::fs::read(clip("v_ApplyEyeMakeup_g01_c01.avi")).unwrap();
    let head_only = write(&dir.path().join("head.avi"), &src[..6000]);
    match probe(&head_only) {
        Err(VideoError::NoFrames { .. }) | Err(VideoError::NotAVideo { .. }) => {}
        other => panic!("header-only file: {other:?}"),
    }
}

#[test]
fn truncated_file_decodes_what_is_there() {
    let dir = tmp();
    let src = std::fs::read(clip("v_ApplyEyeMakeup_g01_c01.avi")).unwrap();
    let cut = write(&dir.path().join("cut.avi"), &src[..src.len() * 6 / 10]);
    let info = probe(&cut).unwrap();
    let (ff_frames, ..) = ffprobe_count(&cut, "v:0");
    assert_eq!(info.frames, ff_frames);
    assert!(info.frames > 50 && info.frames < 164, "{} frames", info.frames);
    assert!(!info.warnings.is_empty(), "no warning for a truncated file");
    match decode_indices(&cut, &[0, 160], &DecodeOptions::default()) {
        Err(VideoError::Truncated { readable, wanted, .. }) => {
            assert_eq!(readable, info.frames);
            assert_eq!(wanted, 160);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert_eq!(decode_indices(&cut, &[0, info.frames - 1], &DecodeOptions::default()).unwrap().len(), 2);
}

/// PyTorchVideo's `get_clip(start, end)` frames, by index, from the fixture.
#[test]
fn time_ranges_follow_pytorchvideo() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("transforms/manifest.json")).unwrap()).unwrap();
    let mut checked = 0;
    for case in manifest["cases"].as_array().unwrap() {
        if case["op"] != "clip_frame_indices" {
            continue;
        }
        let p = &case["params"];
        let video = fixtures().join(p["video"].as_str().unwrap());
        let (s, e) = (p["start_sec"].as_f64().unwrap(), p["end_sec"].as_f64().unwrap());
        let expected: Vec<usize> =
            case["expected"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let all = decode_all(&video, &DecodeOptions::default()).unwrap();
        let got = decode_time_range(&video, s, e, &DecodeOptions::default()).unwrap().frames;
        let got_idx: Vec<usize> = got
            .iter()
            .map(|f| all.iter().position(|a| a.data == f.data).expect("frame from the clip is one of the video's"))
            .collect();
        if video.extension().is_some_and(|x| x == "avi") {
            // PyAV labels this xvid file's B-frames with swapped timestamps, so
            // PyTorchVideo returns them out of order and drops one at each edge.
            // vidi keeps decode order (best-effort timestamps): a contiguous run
            // that covers PyTorchVideo's set up to one frame at each end.
            assert!(got_idx.windows(2).all(|w| w[1] == w[0] + 1), "{:?}", got_idx);
            let missing = expected.iter().filter(|i| !got_idx.contains(i)).count();
            let extra = got_idx.iter().filter(|i| !expected.contains(i)).count();
            assert!(
                missing <= 1 && extra <= 2,
                "{s}-{e}: missing {missing}, extra {extra}: {got_idx:?} vs {expected:?}"
            );
        } else {
            assert_eq!(got_idx, expected, "{} {s}-{e}", video.display());
        }
        checked += 1;
    }
    assert!(checked >= 5);
}
