//! Datasets described by annotation files: UCF101's official lists, CSVs of
//! segments of long real videos, the other list formats, bad input, class
//! imbalance and --balance. Every list is written by hand here; expected frame
//! ranges come from ffprobe, pictures from the ffmpeg CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use vidi::dataset::loader::{balanced, Example, Item};
use vidi::dataset::{index_source, ClipSampler, DataSource, IndexOptions};
use vidi::video::{decode_time_range_subsampled, DecodeOptions};

use crate::dataset::make_clip;
use crate::{clip, ffmpeg, ffmpeg_frame_rgb, fixtures, mean_abs_diff};

fn vidi(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vidi")).args(args).env("VIDI_DEVICE", "cpu").output().expect("run vidi")
}

/// `vidi ARGS --json` that must succeed, as JSON.
fn vidi_json(args: &[&str]) -> serde_json::Value {
    let o = vidi(args);
    assert!(o.status.success(), "vidi {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// `vidi ARGS` that must fail with exactly one `error:` line; that line.
fn vidi_error(args: &[&str]) -> String {
    let o = vidi(args);
    assert!(!o.status.success(), "vidi {args:?} should fail");
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// ffprobe's frame rate (r_frame_rate) and decoded frame count of the first video stream.
fn ffprobe_fps_frames(path: &Path) -> (f64, usize) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=r_frame_rate,nb_read_frames", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let st = &v["streams"][0];
    let (n, d) = st["r_frame_rate"].as_str().unwrap().split_once('/').unwrap();
    let fps = n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap();
    (fps, st["nb_read_frames"].as_str().unwrap().parse().unwrap())
}

/// A UCF101-like videos folder: the real UCF101 clip and generated ones, in class folders.
fn ucf_videos(root: &Path) {
    let d = root.join("ApplyEyeMakeup");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(clip("v_ApplyEyeMakeup_g01_c01.avi"), d.join("v_ApplyEyeMakeup_g01_c01.avi")).unwrap();
    make_clip(&d.join("v_ApplyEyeMakeup_g02_c01.avi"), 1, 0.6);
    make_clip(&d.join("v_ApplyEyeMakeup_g03_c01.avi"), 2, 0.6);
    for (k, g) in [(3, 1), (4, 2), (5, 3)] {
        make_clip(&root.join("Archery").join(format!("v_Archery_g{g:02}_c01.avi")), k, 0.6);
    }
}

#[test]
fn ucf101_official_lists_with_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dir.path().join("UCF-101");
    ucf_videos(&videos);
    let lists = dir.path().join("ucfTrainTestlist");
    std::fs::create_dir_all(&lists).unwrap();
    // The official files' layout: 1-based ids, CRLF line ends.
    std::fs::write(lists.join("classInd.txt"), "1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n3 Archery\r\n").unwrap();
    std::fs::write(
        lists.join("trainlist01.txt"),
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 1\r\nApplyEyeMakeup/v_ApplyEyeMakeup_g03_c01.avi 1\r\n\
         Archery/v_Archery_g02_c01.avi 3\r\nArchery/v_Archery_g03_c01.avi 3\r\n\
         Archery/v_Archery_g09_c01.avi 3\r\nArchery/v_Archery_g01_c01.avi 7\r\n",
    )
    .unwrap();
    std::fs::write(
        lists.join("testlist01.txt"),
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\nArchery/v_Archery_g01_c01.avi\r\n",
    )
    .unwrap();
    let v = vidi_json(&[
        "dataset",
        "inspect",
        s(&videos),
        "--classes",
        s(&lists.join("classInd.txt")),
        "--train",
        s(&lists.join("trainlist01.txt")),
        "--test",
        s(&lists.join("testlist01.txt")),
        "--json",
    ]);
    assert_eq!(v["format"], "ucf101");
    // The ids are classInd's, in its order, even for a class with no videos.
    assert_eq!(v["classes"], serde_json::json!(["ApplyEyeMakeup", "ApplyLipstick", "Archery"]));
    assert_eq!(v["counts"]["train"], serde_json::json!({"ApplyEyeMakeup": 2, "ApplyLipstick": 0, "Archery": 2}));
    assert_eq!(v["counts"]["test"], serde_json::json!({"ApplyEyeMakeup": 1, "ApplyLipstick": 0, "Archery": 1}));
    assert_eq!(v["empty_classes"], serde_json::json!(["ApplyLipstick"]));
    assert_eq!(v["layout"], "split");
    // A missing file and an index classInd does not have: listed, skipped, not fatal.
    let un: Vec<(String, String, String)> = v["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let p = PathBuf::from(u["path"].as_str().unwrap());
            let rel = p.strip_prefix(&videos).unwrap().display().to_string();
            (rel, u["reason"].as_str().unwrap().to_string(), u["split"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        un,
        vec![
            (
                "Archery/v_Archery_g01_c01.avi".to_string(),
                "trainlist01.txt line 6: label index 7 is not in the classes file (1..3)".to_string(),
                "train".to_string()
            ),
            (
                "Archery/v_Archery_g09_c01.avi".to_string(),
                "trainlist01.txt line 5: no such file".to_string(),
                "train".to_string()
            ),
        ]
    );
    assert_eq!(v["problems"], serde_json::json!([]));
    assert_eq!(v["segments"], 0);

    // The same in the library: labels are classInd's ids minus one.
    let src = DataSource {
        path: videos.clone(),
        classes: Some(lists.join("classInd.txt")),
        train: vec![lists.join("trainlist01.txt")],
        val: vec![],
        test: vec![lists.join("testlist01.txt")],
    };
    let idx = index_source(&src, &IndexOptions::default(), &mut |_, _| {}).unwrap();
    let real = idx.samples.iter().find(|s| s.path.ends_with("v_ApplyEyeMakeup_g01_c01.avi")).unwrap();
    assert_eq!(
        (real.label, real.split.as_deref(), real.group.as_deref()),
        (0, Some("test"), Some("ApplyEyeMakeup_g01"))
    );
    assert_eq!(idx.samples.iter().find(|s| s.class == "Archery").unwrap().label, 2);
    // Group g01 of Archery is in test only (the train row with it was skipped): no leakage.
    assert!(idx.leaking_groups.is_empty(), "{:?}", idx.leaking_groups);
}

/// Paths are relative to the videos folder, or else to the list's own folder; --val too.
#[test]
fn list_paths_fall_back_to_the_lists_folder() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dir.path().join("videos");
    ucf_videos(&videos);
    let other = dir.path().join("elsewhere");
    make_clip(&other.join("Archery/v_Archery_g07_c01.avi"), 9, 0.6);
    std::fs::write(
        other.join("val.txt"),
        "Archery/v_Archery_g07_c01.avi 3\nApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("classInd.txt"), "1 ApplyEyeMakeup\n2 ApplyLipstick\n3 Archery\n").unwrap();
    let v = vidi_json(&[
        "dataset",
        "inspect",
        s(&videos),
        "--classes",
        s(&dir.path().join("classInd.txt")),
        "--val",
        s(&other.join("val.txt")),
        "--json",
    ]);
    assert_eq!(v["counts"]["val"], serde_json::json!({"ApplyEyeMakeup": 1, "ApplyLipstick": 0, "Archery": 1}));
    assert_eq!(v["unreadable"], serde_json::json!([]));
}

/// A CSV of segments of a long real video: each row is a sample; the clips
/// drawn from it hold only frames of its range, the frames ffprobe's frame
/// rate puts there, as the ffmpeg CLI decodes them.
#[test]
fn csv_segments_of_a_long_video_are_samples_of_their_range() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("match.mp4");
    std::fs::copy(clip("mmaction2_demo.mp4"), &long).unwrap();
    std::fs::copy(clip("v_ApplyEyeMakeup_g01_c01.avi"), dir.path().join("makeup.avi")).unwrap();
    let (fps, frames) = ffprobe_fps_frames(&long);
    assert_eq!((fps, frames), (28.0, 280), "the fixture's README");
    let duration = frames as f64 / fps; // 10 s
    let csv = dir.path().join("ann.csv");
    std::fs::write(
        &csv,
        "video,label,start,end,split\r\n\
         match.mp4,wrestling,2.0,6.5,train\r\n\
         match.mp4,wrestling,8.0,9.0,test\r\n\
         makeup.avi,makeup,0.5,5.5,test\r\n\
         makeup.avi,makeup,,,train\r\n\
         match.mp4,wrestling,8.0,12.0,train\r\n\
         gone.mp4,wrestling,0,1,train\r\n",
    )
    .unwrap();
    let v = vidi_json(&["dataset", "inspect", s(&csv), "--json"]);
    assert_eq!(v["format"], "csv");
    assert_eq!(v["classes"], serde_json::json!(["makeup", "wrestling"]));
    // counts are samples, not files: match.mp4 gives one train and one test sample.
    assert_eq!(v["counts"]["train"], serde_json::json!({"makeup": 1, "wrestling": 1}));
    assert_eq!(v["counts"]["test"], serde_json::json!({"makeup": 1, "wrestling": 1}));
    assert_eq!(v["segments"], 3);
    let un = v["unreadable"].as_array().unwrap();
    assert_eq!(un.len(), 2, "{un:?}");
    assert!(un[0]["path"].as_str().unwrap().ends_with("gone.mp4"));
    assert_eq!(un[0]["reason"], "ann.csv line 7: no such file");
    assert!(un[1]["path"].as_str().unwrap().ends_with("match.mp4"));
    let why = un[1]["reason"].as_str().unwrap();
    assert!(why.starts_with("ann.csv line 6: the segment 8-12 s lies outside the video (0-"), "{why}");

    let idx = index_source(&DataSource::path(&csv), &IndexOptions::default(), &mut |_, _| {}).unwrap();
    let seg = |split: &str, start: f64| {
        idx.samples
            .iter()
            .find(|x| x.split.as_deref() == Some(split) && x.segment.is_some_and(|g| g.start_s == start))
            .unwrap()
    };
    let dec = DecodeOptions::default();
    let check = |ex: &Example, sampler: ClipSampler, want_windows: usize| {
        let seg = ex.segment.unwrap();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(5);
        let windows = ex.windows(&sampler, ex.item.duration_s.unwrap(), &mut rng);
        assert_eq!(windows.len(), want_windows, "{windows:?}");
        for w in windows {
            assert!(w.start_secs >= seg.start_s && w.end_secs <= seg.end_s, "{w:?} outside {seg:?}");
            // Frame i shows at i / fps: the window holds ceil(start * fps) .. ceil(end * fps).
            let (first, end) = ((w.start_secs * fps).ceil() as usize, (w.end_secs * fps).ceil() as usize);
            let got = decode_time_range_subsampled(&ex.item.path, w.start_secs, w.end_secs, 8, &dec).unwrap();
            assert_eq!(got.window_frames, end - first, "{w:?}");
            // UniformTemporalSubsample: linspace(0, t - 1, 8), truncated.
            let t = end - first;
            for k in [0usize, 7] {
                let want = first + ((k as f64) * (t - 1) as f64 / 7.0) as usize;
                let reference = ffmpeg_frame_rgb(&ex.item.path, want, &[]);
                let mean = mean_abs_diff(&got.frames[k].data, &reference);
                assert!(mean < 2.5, "{w:?}: frame {k} is not the video's frame {want} ({mean})");
            }
        }
    };
    // The val sampler: back-to-back clips of 16 x 4 / 30 s while they fit in the 4.5 s.
    let train = Example::from(seg("train", 2.0));
    assert_eq!(train.item.duration_s, Some(4.5));
    check(&train, ClipSampler::Uniform { clip_duration: 64.0 / 30.0 }, 2);
    // A random clip longer than the 1 s segment stops at its end (frame 251), never after.
    let test = Example::from(seg("test", 8.0));
    check(&test, ClipSampler::Random { clip_duration: 64.0 / 30.0 }, 1);
    assert!(9.0 < duration);
    // The whole-video row is the file itself, as in a folder.
    let whole = idx.samples.iter().find(|x| x.split.as_deref() == Some("train") && x.class == "makeup").unwrap();
    assert!(whole.segment.is_none());
    assert_eq!(Item::from(whole).duration_s, whole.info.as_ref().map(|i| i.sampling_duration_s()));
}

/// `vidi eval --data ann.csv`: a segment scores as the same frames cut out
/// of the video by the ffmpeg CLI (losslessly), and a whole-video row as the
/// file does in a folder.
#[test]
fn eval_on_a_csv_scores_segments_as_the_frames_cut_out() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("match.mp4");
    std::fs::copy(clip("mmaction2_demo.mp4"), &long).unwrap();
    let makeup = dir.path().join("makeup.avi");
    std::fs::copy(clip("v_ApplyEyeMakeup_g01_c01.avi"), &makeup).unwrap();
    // Frames 56..=181 (2.0 s to 6.5 s at 28 fps), losslessly, in a folder of their own.
    let folder = dir.path().join("ref");
    let cut = folder.join("test/class_0/cut.mkv");
    std::fs::create_dir_all(cut.parent().unwrap()).unwrap();
    ffmpeg(&[
        "-i",
        s(&long),
        "-an",
        "-vf",
        "select=between(n\\,56\\,181),setpts=N/28/TB",
        "-r",
        "28",
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "yuv420p",
        s(&cut),
    ]);
    std::fs::create_dir_all(folder.join("test/class_1")).unwrap();
    std::fs::copy(&makeup, folder.join("test/class_1/makeup.avi")).unwrap();
    let csv = dir.path().join("ann.csv");
    std::fs::write(
        &csv,
        "path,class,time_start,time_end,split\nmatch.mp4,class_0,2.0,6.5,test\nmakeup.avi,class_1,,,test\n",
    )
    .unwrap();
    let model = fixtures().join("models/videomae_cls");
    let out = dir.path().join("report");
    let o = vidi(&["eval", "--model", s(&model), "--data", s(&csv), "--split", "test", "--out", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let want = vidi_json(&["eval", "--model", s(&model), "--data", s(&folder), "--split", "test", "--json"]);
    assert_eq!(got["videos"], 2);
    assert_eq!(got["outcomes"][0]["segment"], serde_json::json!({"start_s": 2.0, "end_s": 6.5}));
    assert!(got["outcomes"][1].get("segment").is_none());
    for (g, w) in got["outcomes"].as_array().unwrap().iter().zip(want["outcomes"].as_array().unwrap()) {
        assert_eq!(g["label"], w["label"]);
        for (a, b) in g["top3"].as_array().unwrap().iter().zip(w["top3"].as_array().unwrap()) {
            assert_eq!(a["label"], b["label"]);
            let (a, b) = (a["score"].as_f64().unwrap(), b["score"].as_f64().unwrap());
            assert!((a - b).abs() < 1e-5, "{} {a} vs {b}", g["video"]);
        }
    }
    assert!(out.join("confusion.csv").is_file() && out.join("confusion.png").is_file());
}

/// Bad input: one clear line each for what stops indexing; rows and classes
/// files with problems are listed and skipped.
#[test]
fn bad_annotation_files_get_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let empty = d.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(
        vidi_error(&["dataset", "inspect", s(&empty)]),
        format!("error: {}: the CSV is empty (expected a header such as video,label,start,end,split)", empty.display())
    );
    let nolabel = d.join("nolabel.csv");
    std::fs::write(&nolabel, "video,start,end\na.mp4,0,1\n").unwrap();
    assert_eq!(
        vidi_error(&["dataset", "inspect", s(&nolabel), "--json"]),
        format!(
            "error: {}: no label column (name one 'label' or 'class'; the header has: video, start, end)",
            nolabel.display()
        )
    );
    let nopath = d.join("nopath.csv");
    std::fs::write(&nopath, "label,start\nx,0\n").unwrap();
    assert_eq!(
        vidi_error(&["dataset", "inspect", s(&nopath)]),
        format!(
            "error: {}: no path column (name one 'video', 'path', 'file' or 'filename'; the header has: label, start)",
            nopath.display()
        )
    );
    let garbage = d.join("notes.txt");
    std::fs::write(&garbage, "these are my notes\nabout some videos\n").unwrap();
    let videos = d.join("videos");
    make_clip(&videos.join("A/a1.mp4"), 1, 0.4);
    make_clip(&videos.join("B/b1.mp4"), 2, 0.4);
    assert_eq!(
        vidi_error(&["dataset", "inspect", s(&videos), "--train", s(&garbage)]),
        format!(
            "error: {}: not an annotation file vidi knows (UCF101 or HMDB51 lists, mmaction2 lists, CSV with a header, Kinetics CSV, Something-Something JSON)",
            garbage.display()
        )
    );
    // A classes file naming a class twice, a list with a missing file and a wrong index.
    let classes = d.join("classes.txt");
    std::fs::write(&classes, "A\nB\nA\n").unwrap();
    let list = d.join("train.txt");
    std::fs::write(&list, "A/a1.mp4 0\nB/b1.mp4 1\nA/a9.mp4 0\nB/b1.mp4 2\n").unwrap();
    let v = vidi_json(&["dataset", "inspect", s(&videos), "--classes", s(&classes), "--train", s(&list), "--json"]);
    assert_eq!(v["format"], "mmaction2");
    assert_eq!(v["classes"], serde_json::json!(["A", "B"]));
    assert_eq!(v["counts"]["train"], serde_json::json!({"A": 1, "B": 1}));
    assert_eq!(
        v["problems"],
        serde_json::json!([{
            "file": s(&classes),
            "line": 3,
            "message": "class 'A' is listed twice (index 2, first as label 0); the second entry is left out"
        }])
    );
    let reasons: Vec<&str> =
        v["unreadable"].as_array().unwrap().iter().map(|u| u["reason"].as_str().unwrap()).collect();
    assert_eq!(
        reasons,
        vec!["train.txt line 3: no such file", "train.txt line 4: label index 2 is not in the classes file (0..1)"]
    );
}

/// HMDB51 split files, mmaction2 lists without classes, Kinetics CSVs and
/// Something-Something v2 JSON, each detected by its content.
#[test]
fn hmdb_kinetics_and_ssv2_lists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // HMDB51: <root>/<class>/<video>, split files "video 0|1|2".
    let hmdb = d.join("hmdb51");
    for (k, (class, name)) in
        [("brush_hair", "a.avi"), ("brush_hair", "b.avi"), ("brush_hair", "c.avi"), ("cartwheel", "d.avi")]
            .iter()
            .enumerate()
    {
        make_clip(&hmdb.join(class).join(name), k as u32, 0.4);
    }
    let splits = d.join("splits");
    std::fs::create_dir_all(&splits).unwrap();
    std::fs::write(splits.join("brush_hair_test_split1.txt"), "a.avi 1 \r\nb.avi 2 \r\nc.avi 0 \r\n").unwrap();
    std::fs::write(splits.join("cartwheel_test_split1.txt"), "d.avi 1 \r\n").unwrap();
    let v = vidi_json(&[
        "dataset",
        "inspect",
        s(&hmdb),
        "--train",
        s(&splits.join("brush_hair_test_split1.txt")),
        s(&splits.join("cartwheel_test_split1.txt")),
        "--json",
    ]);
    assert_eq!(v["format"], "hmdb51");
    assert_eq!(v["counts"]["train"], serde_json::json!({"brush_hair": 1, "cartwheel": 1}));
    assert_eq!(v["counts"]["test"], serde_json::json!({"brush_hair": 1, "cartwheel": 0}));

    // Kinetics: label,youtube_id,time_start,time_end,split -> <id>_<start:06d>_<end:06d>.mp4.
    let kin = d.join("kinetics");
    make_clip(&kin.join("abseiling/0347ZoDXyP0_000095_000105.mp4"), 3, 0.4);
    make_clip(&kin.join("0wR5jVB-WPk_000417_000427.mp4"), 4, 0.4);
    let kcsv = d.join("train.csv");
    std::fs::write(
        &kcsv,
        "label,youtube_id,time_start,time_end,split\nabseiling,0347ZoDXyP0,95,105,train\n\"air drumming\",0wR5jVB-WPk,417,427,val\n",
    )
    .unwrap();
    let v = vidi_json(&["dataset", "inspect", s(&kin), "--train", s(&kcsv), "--json"]);
    assert_eq!(v["format"], "kinetics");
    assert_eq!(v["counts"]["train"], serde_json::json!({"abseiling": 1, "air drumming": 0}));
    assert_eq!(v["counts"]["val"], serde_json::json!({"abseiling": 0, "air drumming": 1}));
    assert_eq!(v["segments"], 0, "Kinetics clips are already cut");

    // SSv2: train.json / validation.json with labels.json beside them; <id>.webm.
    let ss = d.join("ssv2");
    for (k, id) in ["11", "12", "13"].iter().enumerate() {
        let webm = ss.join(format!("{id}.webm"));
        let src = format!("testsrc2=size=64x48:rate=12:duration=0.5,hue=h={}", k * 90);
        std::fs::create_dir_all(&ss).unwrap();
        ffmpeg(&["-f", "lavfi", "-i", &src, "-c:v", "libvpx-vp9", "-deadline", "realtime", s(&webm)]);
    }
    let labels = d.join("ann");
    std::fs::create_dir_all(&labels).unwrap();
    std::fs::write(
        labels.join("labels.json"),
        r#"{"Pushing something from left to right": "1", "Holding something": "0"}"#,
    )
    .unwrap();
    std::fs::write(
        labels.join("train.json"),
        r#"[{"id":"11","label":"holding a cup","template":"Holding [something]","placeholders":["a cup"]},
            {"id":"12","label":"pushing a pen from left to right","template":"Pushing [something] from left to right","placeholders":["a pen"]}]"#,
    )
    .unwrap();
    std::fs::write(labels.join("validation.json"), r#"[{"id":"13","template":"Holding [something]"}]"#).unwrap();
    let v = vidi_json(&[
        "dataset",
        "inspect",
        s(&ss),
        "--train",
        s(&labels.join("train.json")),
        "--val",
        s(&labels.join("validation.json")),
        "--json",
    ]);
    assert_eq!(v["format"], "ssv2");
    // labels.json's indices are the ids.
    assert_eq!(v["classes"], serde_json::json!(["Holding something", "Pushing something from left to right"]));
    assert_eq!(
        v["counts"]["train"],
        serde_json::json!({"Holding something": 1, "Pushing something from left to right": 1})
    );
    assert_eq!(v["counts"]["val"]["Holding something"], 1);
}

/// Imbalance is reported (over 3x); --balance draws the classes evenly from the seed alone.
#[test]
fn imbalance_is_reported_and_balance_draws_classes_evenly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = d.join("long.mp4");
    std::fs::copy(clip("mmaction2_demo.mp4"), &long).unwrap();
    // 7 one-second segments of "big", 2 of "small": 3.5x.
    let mut csv = String::from("file,label,start,end\n");
    for k in 0..7 {
        csv.push_str(&format!("long.mp4,big,{k},{}\n", k + 1));
    }
    csv.push_str("long.mp4,small,7.5,8.5\nlong.mp4,small,8.5,9.5\n");
    std::fs::write(d.join("ann.csv"), &csv).unwrap();
    let v = vidi_json(&["dataset", "inspect", s(&d.join("ann.csv")), "--json"]);
    assert_eq!(v["layout"], "flat");
    assert_eq!(v["class_counts"], serde_json::json!({"big": 7, "small": 2}));
    assert_eq!(
        v["warnings"],
        serde_json::json!([
            "class imbalance in all: 'big' has 7 samples, 'small' has 2 (3.5x; more than 3x); consider vidi train --balance"
        ])
    );
    let idx = index_source(&DataSource::path(d.join("ann.csv")), &IndexOptions::default(), &mut |_, _| {}).unwrap();
    let items: Vec<Example> = idx.samples.iter().map(Example::from).collect();
    let epoch = balanced(&items, 42, 3);
    assert_eq!(epoch.len(), 9);
    let small = epoch.iter().filter(|e| e.item.label == 1).count();
    assert!(small == 4 || small == 5, "{small} of 9 from the small class");
    // Each small segment at least twice; no big segment more than once.
    let mut seen = std::collections::BTreeMap::new();
    for e in &epoch {
        *seen.entry((e.item.label, e.segment.unwrap().start_s.to_bits())).or_insert(0) += 1;
    }
    assert!(seen.iter().all(|((l, _), n)| if *l == 1 { *n >= 2 } else { *n == 1 }), "{seen:?}");
    // The same seed and epoch give the same draw (so resuming repeats it); another epoch, another one.
    let again: Vec<_> = balanced(&items, 42, 3).iter().map(|e| e.segment.unwrap().start_s).collect();
    assert_eq!(again, epoch.iter().map(|e| e.segment.unwrap().start_s).collect::<Vec<_>>());
    let other: Vec<_> = balanced(&items, 42, 4).iter().map(|e| e.segment.unwrap().start_s).collect();
    assert_ne!(other, again);
}

/// `vidi train --data ann.csv --balance`: segments with a split column train a
/// model, the best one is tested on the test segments, and the run's config
/// and model card record the balancing.
#[test]
fn train_on_csv_segments_with_balance() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(clip("mmaction2_demo.mp4"), d.join("long.mp4")).unwrap();
    let mut csv = String::from("video,label,start,end,split\n");
    for k in 0..6 {
        csv.push_str(&format!("long.mp4,busy,{k},{}.9,train\n", k));
    }
    csv.push_str("long.mp4,calm,6,6.9,train\nlong.mp4,calm,7,7.9,val\nlong.mp4,busy,8,8.9,val\n");
    csv.push_str("long.mp4,calm,9,9.9,test\nlong.mp4,busy,9.1,9.8,test\n");
    std::fs::write(d.join("ann.csv"), &csv).unwrap();
    let labels = vec!["busy".to_string(), "calm".to_string()];
    let model = vidi::demo::tiny_videomae(&labels, 3, &vidi::backend::cpu().device).unwrap();
    model.export(&d.join("init")).unwrap();
    let run = d.join("run");
    let o = vidi(&[
        "train",
        "--data",
        s(&d.join("ann.csv")),
        "--model",
        s(&d.join("init")),
        "--out",
        s(&run),
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--sample-rate",
        "2",
        "--balance",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["balance"], true);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("test-eval/report.json")).unwrap()).unwrap();
    assert_eq!(report["videos"], 2);
    assert_eq!(report["outcomes"][0]["segment"], serde_json::json!({"start_s": 9.0, "end_s": 9.9}));
    let card = vidi::share::model_card(&run.join("best"), "me/segments").unwrap();
    assert!(card.contains("| class balancing | classes sampled evenly each epoch (--balance) |"), "{card}");
}

/// `dataset split ann.csv`: a CSV with a group column gets a split column,
/// no group in two splits, and the source file unchanged.
#[test]
fn csv_with_groups_splits_group_aware() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(clip("mmaction2_demo.mp4"), d.join("long.mp4")).unwrap();
    let mut csv = String::from("video,label,start,end,group\n");
    for (c, class) in ["run", "sit"].iter().enumerate() {
        for g in 0..4 {
            for k in 0..2 {
                let t = (c * 8 + g * 2 + k) as f64 * 0.5;
                csv.push_str(&format!("long.mp4,{class},{t},{},person{g}\n", t + 0.5));
            }
        }
    }
    let src = d.join("ann.csv");
    std::fs::write(&src, &csv).unwrap();
    let out = d.join("ann_split.csv");
    let o = vidi(&["dataset", "split", s(&src), "--out", s(&out), "--val", "0.25", "--test", "0.25", "--seed", "3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&src).unwrap(), csv);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut group_splits: std::collections::BTreeMap<(String, String), std::collections::BTreeSet<String>> =
        Default::default();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 16);
    for r in &rows {
        let f: Vec<&str> = r.split(',').collect();
        group_splits.entry((f[1].into(), f[4].into())).or_default().insert(f[5].into());
    }
    assert!(group_splits.values().all(|s| s.len() == 1), "{group_splits:?}");
    let v = vidi_json(&["dataset", "inspect", s(&out), "--json"]);
    assert_eq!(v["layout"], "split");
    assert_eq!(v["segments"], 16);
    assert_eq!(v["leaking_groups"], serde_json::json!([]));
    for split in ["train", "val", "test"] {
        assert_eq!(v["counts"][split]["run"].as_u64().unwrap() % 2, 0, "whole groups of 2 in {split}");
        assert!(v["counts"][split]["run"].as_u64().unwrap() > 0, "{split}: {}", v["counts"]);
    }
    let again = vidi_error(&["dataset", "split", s(&src), "--out", s(&out)]);
    assert_eq!(again, format!("error: {}: already exists; choose a new file (nothing was written)", out.display()));
}

/// The app takes the same sources: UCF101's official lists typed into the
/// Dataset tab's split-list fields, and an annotation file dropped on the
/// window, whose class imbalance the Train tab then shows beside "Balance classes".
#[test]
fn the_app_reads_official_lists_and_a_dropped_csv_and_train_warns_of_its_imbalance() {
    use eframe::egui;
    use egui_kittest::kittest::Queryable;
    let dir = tempfile::tempdir().unwrap();
    let videos = dir.path().join("UCF-101");
    ucf_videos(&videos);
    let lists = dir.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(lists.join("classInd.txt"), "1 ApplyEyeMakeup\r\n2 Archery\r\n").unwrap();
    std::fs::write(
        lists.join("trainlist01.txt"),
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 1\r\nArchery/v_Archery_g02_c01.avi 2\r\nArchery/v_Archery_g03_c01.avi 2\r\n",
    )
    .unwrap();
    std::fs::write(lists.join("testlist01.txt"), "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n").unwrap();
    let settings = vidi::app::Settings {
        data_dir: videos.to_string_lossy().into_owned(),
        tab: vidi::app::Tab::Dataset,
        ..Default::default()
    };
    let mut h = crate::app::harness(crate::app::new_app(settings, Vec::new()));
    h.step();
    h.get_by_label("Split lists (UCF101, HMDB51, mmaction2)").click();
    h.step();
    h.get_by_label("Classes file").focus();
    h.step();
    h.get_by_label("Classes file").type_text(s(&lists.join("classInd.txt")));
    h.step();
    h.get_by_label("Train list").focus();
    h.step();
    h.get_by_label("Train list").type_text(s(&lists.join("trainlist01.txt")));
    h.step();
    h.get_by_label("Test list").focus();
    h.step();
    h.get_by_label("Test list").type_text(s(&lists.join("testlist01.txt")));
    h.step();
    h.get_by_label("Open").click();
    crate::app::settle(&mut h, 60);
    // Three train rows and one test row, two classes, read as UCF101 lists.
    crate::app::wait_for(&mut h, "2 classes, 4 samples (ucf101)", 5);
    assert_eq!(h.state().settings.data_source().train, vec![lists.join("trainlist01.txt")]);

    // A CSV of 7 segments of one class and 2 of another, dropped on the window.
    let long = dir.path().join("long.mp4");
    std::fs::copy(clip("mmaction2_demo.mp4"), &long).unwrap();
    let mut csv = String::from("file,label,start,end\n");
    for k in 0..7 {
        csv.push_str(&format!("long.mp4,big,{k},{}\n", k + 1));
    }
    csv.push_str("long.mp4,small,7.5,8.5\nlong.mp4,small,8.5,9.5\n");
    let ann = dir.path().join("ann.csv");
    std::fs::write(&ann, &csv).unwrap();
    /// A file dropped from a file manager, as the window delivers it.
    #[derive(Debug)]
    struct Dropped(PathBuf);
    impl egui::DroppedFile for Dropped {
        fn path(&self) -> &Path {
            &self.0
        }
        fn bytes(&self) -> Result<Vec<u8>, String> {
            std::fs::read(&self.0).map_err(|e| e.to_string())
        }
    }
    h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(ann.clone())));
    h.step();
    crate::app::settle(&mut h, 60);
    crate::app::wait_for(&mut h, "2 classes, 9 samples, 9 of them segments (csv)", 5);
    // The lists were for the folder: a dropped file is a source of its own.
    assert!(h.state().settings.data_lists.is_empty());
    assert_eq!(h.state().settings.data_dir, ann.to_string_lossy());
    // The warning says what to press in the app, not what to type.
    crate::app::wait_for(&mut h, "Tick \"Balance classes\" on the Train tab", 5);
    assert!(h.query_by_label_contains("vidi train --balance").is_none());
    h.get_by_label("Train").click();
    h.step();
    h.step();
    crate::app::wait_for(&mut h, "class imbalance in all: 'big' has 7 samples, 'small' has 2 (3.5x", 5);
    assert!(h.query_by_label("Balance classes").is_some());
}
