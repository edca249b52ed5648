//! The `vidi` binary: JSON outputs checked against ffprobe, one-line errors.

use std::process::Command;

fn vidi(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vidi")).args(args).output().expect("run vidi")
}

#[test]
fn probe_json_matches_ffprobe_and_reports_failures() {
    let avi = crate::clip("v_ApplyEyeMakeup_g01_c01.avi");
    let mkv = crate::clip("asl_thanks.mkv");
    let o = vidi(&["probe", "--json", avi.to_str().unwrap(), mkv.to_str().unwrap(), "/nonexistent.mp4"]);
    assert!(!o.status.success(), "a failed file must make the exit code non-zero");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON list on stdout");
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for (row, path) in rows.iter().zip([&avi, &mkv]) {
        let (frames, w, h, codec) = crate::ffprobe_count(path, "v:0");
        assert_eq!(row["frames"].as_u64().unwrap() as usize, frames);
        assert_eq!(row["width"].as_u64().unwrap() as u32, w);
        assert_eq!(row["height"].as_u64().unwrap() as u32, h);
        assert_eq!(row["codec"], codec.as_str());
        assert!(row["fps"].as_f64().unwrap() > 0.0 && row["duration_s"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(rows[0]["fps"].as_f64().unwrap(), 25.0);
    assert!(rows[2]["error"].as_str().unwrap().contains("no such file"));
}

#[test]
fn bad_input_is_one_line_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"garbage").unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec!["probe".into(), junk.display().to_string()],
        vec!["dataset".into(), "inspect".into(), dir.path().join("missing").display().to_string()],
        vec!["dataset".into(), "inspect".into(), dir.path().display().to_string()],
        vec![
            "preview".into(),
            junk.display().to_string(),
            "--out".into(),
            dir.path().join("x.gif").display().to_string(),
        ],
        vec![
            "dataset".into(),
            "split".into(),
            dir.path().display().to_string(),
            "--out".into(),
            "/tmp/vidi-never".into(),
            "--val".into(),
            "0.7".into(),
            "--test".into(),
            "0.5".into(),
        ],
    ];
    for args in cases {
        let o = vidi(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{args:?}: {err}");
    }
    assert!(!std::path::Path::new("/tmp/vidi-never").exists());
}

#[test]
fn preview_writes_a_gif_of_the_clip_at_four_frames_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("p.gif");
    let strip = dir.path().join("s.png");
    let avi = crate::clip("v_ApplyEyeMakeup_g01_c01.avi");
    // Same seed, same everything: the base arguments of both runs.
    let base = |out: &std::path::Path| -> Vec<String> {
        let a =
            ["preview", avi.to_str().unwrap(), "--preset", "train", "--seed", "5", "--frames", "8", "--size", "112"];
        let b = ["--min-short-side", "128", "--max-short-side", "160", "--out", out.to_str().unwrap()];
        a.iter().chain(&b).map(|x| x.to_string()).collect()
    };
    let mut args = base(&gif);
    args.extend(["--strip".to_string(), strip.display().to_string()]);
    let o = vidi(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    use image::AnimationDecoder;
    let dec = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(std::fs::File::open(&gif).unwrap())).unwrap();
    let frames = dec.into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 8);
    assert_eq!(frames[0].delay().numer_denom_ms(), (250, 1));
    assert_eq!(frames[0].buffer().dimensions(), (112, 112));
    let png = image::open(&strip).unwrap();
    assert!(png.height() > 112 && png.width() > 8 * 50, "strip {}x{}", png.width(), png.height());
    // Same seed, same GIF.
    let gif2 = dir.path().join("p2.gif");
    let o = vidi(&base(&gif2).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success());
    assert_eq!(std::fs::read(&gif).unwrap(), std::fs::read(&gif2).unwrap());
}

#[test]
fn dataset_inspect_json_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    crate::dataset::make_clip(&dir.path().join("train/B/v_B_g01_c01.mp4"), 1, 1.0);
    crate::dataset::make_clip(&dir.path().join("val/A/v_A_g02_c01.mp4"), 2, 1.0);
    let o = vidi(&["dataset", "inspect", "--json", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["classes"], serde_json::json!(["A", "B"]));
    assert_eq!(v["counts"]["train"]["B"], 1);
    assert_eq!(v["counts"]["train"]["A"], 0);
    assert!(v["unreadable"].as_array().unwrap().is_empty());
    assert!(v["leaking_groups"].as_array().unwrap().is_empty());
}

/// A reader that goes away ends the command quietly by SIGPIPE, as `head`
/// expects; a full disk behind stdout is one `error:` line and status 1.
/// Neither is a panic.
#[test]
fn closed_or_full_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let clip = crate::clip("v_ApplyEyeMakeup_g01_c01.avi");
    let clip = clip.to_str().unwrap();
    let files: Vec<&str> = std::iter::once("probe").chain(std::iter::repeat_n(clip, 40)).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vidi"))
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vidi");
    drop(child.stdout.take()); // the reader is gone before the first line
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "status {:?}, stderr: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");

    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let out = Command::new(env!("CARGO_BIN_EXE_vidi")).args(["probe", clip]).stdout(full).output().expect("run vidi");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains("No space left"), "{err}");
}

/// A FIFO or a device is refused before anything opens it: without a writer
/// a FIFO would block the command forever. Each run is killed (and the test
/// fails) if it has not ended within 20 s.
#[test]
fn fifos_and_devices_are_refused_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("clip.mp4");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo: {}", std::io::Error::last_os_error());
    let fifo = fifo.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vidi"));
        cmd.args(args).env("VIDI_DEVICE", "cpu");
        crate::run_measured(&mut cmd, std::time::Duration::from_secs(20))
    };
    let one_line = |args: &[&str], want: &str| {
        let o = run(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(o.stderr, format!("error: {want}\n"), "{args:?}");
    };
    let gif = dir.path().join("p.gif");
    let gif = gif.to_str().unwrap();
    one_line(&["probe", fifo], &format!("{fifo}: not a regular file (a FIFO)"));
    one_line(&["probe", "/dev/zero"], "/dev/zero: not a regular file (a character device)");
    one_line(&["preview", fifo, "--out", gif], &format!("{fifo}: not a regular file (a FIFO)"));
    one_line(&["preview", "/dev/zero", "--out", gif], "/dev/zero: not a regular file (a character device)");
    assert!(!std::path::Path::new(gif).exists());

    // classify: the FIFO's row says why; the real clip beside it is classified.
    let model = crate::fixtures().join("models/videomae_cls");
    let real = crate::clip("short_1s_32frames_part_0.mp4");
    let o = run(&["classify", "--json", "--model", model.to_str().unwrap(), fifo, "/dev/zero", real.to_str().unwrap()]);
    assert!(!o.status.success());
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v[0]["error"], format!("{fifo}: not a regular file (a FIFO)"), "{v}");
    assert_eq!(v[1]["error"], "/dev/zero: not a regular file (a character device)", "{v}");
    assert!(v[2]["predictions"].is_array(), "{v}");

    // A dataset with a FIFO named like a video: reported, never opened.
    let data = dir.path().join("data");
    for class in ["A", "B"] {
        crate::dataset::make_clip(&data.join(class).join("v_x_g01_c01.mp4"), 1, 0.5);
    }
    let named = data.join("A/v_x_g02_c01.mp4");
    std::fs::rename(fifo, &named).unwrap();
    let o = run(&["dataset", "inspect", "--json", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let unreadable = v["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 1, "{v}");
    assert_eq!(unreadable[0]["path"], named.to_str().unwrap());
    assert_eq!(unreadable[0]["reason"], "not a regular file (a FIFO)");
    assert_eq!(v["counts"]["all"]["A"], 1, "{v}");
    // Splitting it places the two real clips and leaves the FIFO alone.
    let out = dir.path().join("split");
    let o = run(&["dataset", "split", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--copy"]);
    assert!(o.status.success(), "{}", o.stderr);
    assert!(!out.join("train/A/v_x_g02_c01.mp4").exists() && !out.join("val/A/v_x_g02_c01.mp4").exists());
}

/// A model path that names no folder is never looked up on the Hub: one line
/// at once, even with a Hub that would hang (a server that accepts and never
/// answers).
#[test]
fn a_missing_model_folder_is_not_a_hub_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("vidi-run")).unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hub = format!("http://{}", silent.local_addr().unwrap());
    let clip = crate::clip("short_1s_32frames_part_0.mp4");
    for model in ["vidi-run/best", "./nope", "/nonexistent/model"] {
        let t = std::time::Instant::now();
        let o = Command::new(env!("CARGO_BIN_EXE_vidi"))
            .args(["classify", "--model", model])
            .arg(&clip)
            .current_dir(dir.path())
            .env("HF_ENDPOINT", &hub)
            .env("VIDI_DEVICE", "cpu")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{model}");
        assert_eq!(err.trim(), format!("error: {model}: no such model folder"), "{model}");
        assert!(t.elapsed() < std::time::Duration::from_secs(20), "{model}: {:?}", t.elapsed());
    }
}

/// `train --resume` takes its settings from the run: a setting given with it
/// is refused by name (it used to be ignored silently), and the run is untouched.
#[test]
fn resume_refuses_settings_it_would_ignore() {
    let run = tempfile::tempdir().unwrap();
    std::fs::write(run.path().join("config.json"), "{}").unwrap();
    for flag in [["--lr", "1e-3"], ["--max-steps", "5"], ["--batch-size", "2"], ["--seed", "7"], ["--device", "cpu"]] {
        let o = vidi(&["train", "--resume", run.path().to_str().unwrap(), flag[0], flag[1]]);
        assert!(!o.status.success(), "{flag:?} was taken with --resume");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("cannot be used with") && err.contains(flag[0]), "{flag:?}: {err}");
    }
    let left: Vec<_> = std::fs::read_dir(run.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("config.json")]);
    assert_eq!(std::fs::read_to_string(run.path().join("config.json")).unwrap(), "{}");
}

/// A command that looks for a GPU prints nothing of the graphics stack's own:
/// Mesa's Vulkan device-select layer made libwayland print "error:
/// XDG_RUNTIME_DIR is invalid or not set" twice per lookup where that variable
/// is unset (ssh, CI, services).
#[test]
fn looking_for_a_gpu_prints_no_stray_lines() {
    let model = crate::fixtures().join("models/videomae_meanpool");
    let clip = crate::clip("v_ApplyEyeMakeup_g01_c01.avi");
    for device in ["auto", "gpu"] {
        let o = Command::new(env!("CARGO_BIN_EXE_vidi"))
            .args(["classify", "--model", model.to_str().unwrap(), clip.to_str().unwrap()])
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("NODEVICE_SELECT")
            .env("VIDI_DEVICE", device)
            .output()
            .expect("run vidi");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{device}: {err}");
        assert!(!err.contains("XDG_RUNTIME_DIR"), "{device}: {err}");
        // What is left is vidi's own: where it computes, and the software adapter's warning.
        for l in err.lines() {
            assert!(l.starts_with("computing on") || l.starts_with("warning: "), "{device}: stray line {l:?}");
        }
    }
}
