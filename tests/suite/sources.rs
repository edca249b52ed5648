//! Classifying more than short files: a timeline over a whole video (checked
//! against ffprobe's frame count and against the pipeline on clips the
//! ffmpeg CLI cut losslessly at each window's start), videos given as URLs
//! (a real loopback server that redirects, ignores Range, fails, sends a web
//! page or stalls), and live sources (an MPEG-TS stream the ffmpeg CLI sends
//! over UDP).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::net::{send, server, stall};
use crate::{clip, ffmpeg, ffprobe_count, fixtures};

fn model() -> PathBuf {
    fixtures().join("models/videomae_meanpool")
}

fn vidi_in(tmp: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vidi"))
        .args(args)
        .env("VIDI_DEVICE", "cpu")
        .env("TMPDIR", tmp)
        .output()
        .expect("run vidi")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

/// A lossless copy (FFV1) of a real clip: cutting it again is exact.
fn lossless(dir: &Path) -> PathBuf {
    let out = dir.join("full.mkv");
    let src = clip("mmaction2_demo.mp4");
    ffmpeg(&["-i", src.to_str().unwrap(), "-an", "-c:v", "ffv1", "-pix_fmt", "yuv420p", out.to_str().unwrap()]);
    out
}

fn preds(v: &serde_json::Value) -> Vec<(String, f64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p["label"].as_str().unwrap().to_string(), p["score"].as_f64().unwrap()))
        .collect()
}

#[test]
fn a_timeline_is_the_pipeline_at_each_window_start() {
    let dir = tempfile::tempdir().unwrap();
    let full = lossless(dir.path());
    let (frames, ..) = ffprobe_count(&full, "v:0");
    // num_frames 4, rate 3: span 12; stride 40.
    let (rate, stride, span) = (3usize, 40usize, 12usize);
    let out = dir.path().join("t");
    let (csv, vtt, srt) = (out.with_extension("csv"), out.with_extension("vtt"), out.with_extension("srt"));
    let m = model();
    let o = vidi_in(
        dir.path(),
        &[
            "classify",
            "--timeline",
            "--window-stride",
            &stride.to_string(),
            "--frame-sampling-rate",
            &rate.to_string(),
            "--json",
            "--top-k",
            "5",
            "--model",
            m.to_str().unwrap(),
            "--export",
            csv.to_str().unwrap(),
            "--export",
            vtt.to_str().unwrap(),
            "--export",
            srt.to_str().unwrap(),
            full.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    let v = &v[0];
    assert_eq!(v["video"], full.to_str().unwrap());
    assert_eq!(v["frames"].as_u64().unwrap() as usize, frames, "frames decoded vs ffprobe -count_frames");
    let tl = v["timeline"].as_array().unwrap();
    let starts: Vec<usize> = (0..).map(|k| k * stride).take_while(|s| s + span <= frames).collect();
    assert_eq!(tl.iter().map(|w| w["start_frame"].as_u64().unwrap() as usize).collect::<Vec<_>>(), starts);
    let fps = v["fps"].as_f64().unwrap();
    assert!((fps - 28.0).abs() < 0.01, "fps {fps}; ffprobe says 28");
    for w in tl {
        let s = w["start_frame"].as_u64().unwrap() as usize;
        assert_eq!(w["end_frame"].as_u64().unwrap() as usize, s + span);
        assert!((w["start_s"].as_f64().unwrap() - s as f64 / fps).abs() < 1e-6);
        assert!((w["end_s"].as_f64().unwrap() - (s + span) as f64 / fps).abs() < 1e-6);
    }
    // Windows 1 and the last equal the pipeline on a video that starts there.
    for w in [&tl[1], tl.last().unwrap()] {
        let s = w["start_frame"].as_u64().unwrap();
        let cut = dir.path().join(format!("from{s}.mkv"));
        let vf = format!("trim=start_frame={s},setpts=PTS-STARTPTS");
        ffmpeg(&[
            "-i",
            full.to_str().unwrap(),
            "-vf",
            &vf,
            "-c:v",
            "ffv1",
            "-pix_fmt",
            "yuv420p",
            cut.to_str().unwrap(),
        ]);
        let p = vidi_in(
            dir.path(),
            &[
                "classify",
                "--json",
                "--sampling",
                "pipeline",
                "--frame-sampling-rate",
                &rate.to_string(),
                "--model",
                m.to_str().unwrap(),
                cut.to_str().unwrap(),
            ],
        );
        assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
        let (got, want) = (preds(&w["predictions"]), preds(&json(&p)[0]["predictions"]));
        assert_eq!(got.iter().map(|p| &p.0).collect::<Vec<_>>(), want.iter().map(|p| &p.0).collect::<Vec<_>>());
        for (a, b) in got.iter().zip(&want) {
            assert!((a.1 - b.1).abs() < 1e-5, "window at {s}: {} vs {}", a.1, b.1);
        }
    }
    // Segments: runs of the same top label, with their mean score.
    let mut runs: Vec<(String, f64, f64, Vec<f64>)> = Vec::new();
    for w in tl {
        let top = &preds(&w["predictions"])[0];
        let (s, e) = (w["start_s"].as_f64().unwrap(), w["end_s"].as_f64().unwrap());
        match runs.last_mut() {
            Some(r) if r.0 == top.0 => {
                r.2 = e;
                r.3.push(top.1);
            }
            _ => runs.push((top.0.clone(), s, e, vec![top.1])),
        }
    }
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), runs.len());
    for (g, r) in segs.iter().zip(&runs) {
        assert_eq!(g["label"], r.0.as_str());
        assert!(
            (g["start_s"].as_f64().unwrap() - r.1).abs() < 1e-9 && (g["end_s"].as_f64().unwrap() - r.2).abs() < 1e-9
        );
        let mean = r.3.iter().sum::<f64>() / r.3.len() as f64;
        assert!((g["score"].as_f64().unwrap() - mean).abs() < 1e-5);
    }
    // Exports: a CSV row per window, a subtitle cue per segment.
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().next().unwrap(), "video,start_frame,end_frame,start_s,end_s,label,score");
    assert_eq!(csv.lines().count(), tl.len() + 1);
    let vtt = std::fs::read_to_string(&vtt).unwrap();
    assert!(vtt.starts_with("WEBVTT\n\n1\n00:00:00.000 --> "), "{vtt}");
    assert_eq!(vtt.matches(" --> ").count(), segs.len());
    let srt = std::fs::read_to_string(&srt).unwrap();
    assert!(srt.starts_with("1\n00:00:00,000 --> "), "{srt}");
    assert_eq!(srt.matches(" --> ").count(), segs.len());
    assert!(srt.contains(&format!("{} (", segs[0]["label"].as_str().unwrap())));
}

#[test]
fn a_video_shorter_than_a_window_gets_one_window_over_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let short = clip("short_1s_32frames_part_0.mp4");
    let m = model();
    // span 4 x 16 = 64 > 32 frames.
    let o = vidi_in(
        dir.path(),
        &[
            "classify",
            "--timeline",
            "--frame-sampling-rate",
            "16",
            "--json",
            "--model",
            m.to_str().unwrap(),
            short.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    let tl = v[0]["timeline"].as_array().unwrap();
    assert_eq!(tl.len(), 1);
    assert_eq!((tl[0]["start_frame"].as_u64(), tl[0]["end_frame"].as_u64()), (Some(0), Some(32)));
}

/// A server for URL tests: a redirect to the clip, the clip sent whole
/// whatever Range says, a 404, a web page and a stall.
fn clip_server(bytes: Vec<u8>) -> crate::net::Server {
    server(move |_, req, s: &mut TcpStream| match req.path.as_str() {
        "/resolve/main/clip.mp4" => {
            send(s, "302 Found", &[("Location", "/storage/clip.mp4".into()), ("Content-Length", "0".into())], b"")
        }
        "/storage/clip.mp4" => send(
            s,
            "200 OK",
            &[("Content-Length", bytes.len().to_string()), ("Content-Type", "video/mp4".into())],
            &bytes,
        ),
        "/page.mp4" => send(
            s,
            "200 OK",
            &[("Content-Type", "text/html".into()), ("Content-Length", "13".into())],
            b"<html></html>",
        ),
        "/stall.mp4" => {
            send(
                s,
                "200 OK",
                &[("Content-Length", "1000000".into()), ("Content-Type", "video/mp4".into())],
                &bytes[..1000],
            );
            stall(s);
        }
        _ => send(s, "404 Not Found", &[("Content-Length", "0".into())], b""),
    })
}

fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vidi-url-"))
        .collect()
}

#[test]
fn urls_are_classified_like_files_and_bad_ones_get_their_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = clip("mmaction2_demo.mp4");
    let srv = clip_server(std::fs::read(&file).unwrap());
    let m = model();
    let good = format!("{}/resolve/main/clip.mp4", srv.url);
    let urls = [
        good.clone(),
        format!("{}/missing.mp4", srv.url),
        format!("{}/page.mp4", srv.url),
        format!("{}/stall.mp4", srv.url),
    ];
    let mut args =
        vec!["classify", "--json", "--timeout", "2", "--sampling", "uniform", "--model", m.to_str().unwrap()];
    args.extend(urls.iter().map(String::as_str));
    args.push(file.to_str().unwrap());
    let o = vidi_in(dir.path(), &args);
    assert!(!o.status.success());
    let v = json(&o);
    let r = v.as_array().unwrap();
    assert_eq!(r.len(), 5);
    for (got, want) in r.iter().zip(urls.iter()) {
        assert_eq!(got["video"], want.as_str(), "the video field is the URL as given");
    }
    // The downloaded clip scores as the file itself does.
    let (a, b) = (preds(&r[0]["predictions"]), preds(&r[4]["predictions"]));
    assert_eq!(a.iter().map(|p| &p.0).collect::<Vec<_>>(), b.iter().map(|p| &p.0).collect::<Vec<_>>());
    assert!(a.iter().zip(&b).all(|(x, y)| (x.1 - y.1).abs() < 1e-5), "{a:?} vs {b:?}");
    let err = |i: usize| r[i]["error"].as_str().unwrap_or_default().to_string();
    assert!(err(1).contains("404"), "{}", err(1));
    assert!(err(2).contains("web page"), "{}", err(2));
    assert!(err(3).contains("sent nothing for 2 s"), "{}", err(3));
    assert!(err(1).starts_with(&urls[1]));
    assert!(!err(1).contains('\n'));
    // The redirect was followed, and nothing was left in the temporary folder.
    assert!(srv.log.lock().unwrap().iter().any(|q| q.path == "/storage/clip.mp4"));
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    // A timeline takes a URL too.
    let t = vidi_in(dir.path(), &["classify", "--timeline", "--json", "--model", m.to_str().unwrap(), &good]);
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    assert_eq!(json(&t)[0]["video"], good.as_str());
    assert!(!json(&t)[0]["timeline"].as_array().unwrap().is_empty());
}

#[test]
fn ctrl_c_during_a_download_leaves_no_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let srv = clip_server(std::fs::read(clip("mmaction2_demo.mp4")).unwrap());
    let m = model();
    let url = format!("{}/stall.mp4", srv.url);
    let mut child = Command::new(env!("CARGO_BIN_EXE_vidi"))
        .args(["classify", "--timeout", "60", "--model", m.to_str().unwrap(), &url])
        .env("VIDI_DEVICE", "cpu")
        .env("TMPDIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while leftovers(dir.path()).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "the download never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) with the child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

/// The ffmpeg CLI sending a real clip, looped, in real time, as MPEG-TS over
/// UDP to `port`; killed when dropped (a failing test leaves no sender behind).
struct Sender(std::process::Child);

impl Sender {
    fn start(port: u16) -> Sender {
        let dest = format!("udp://127.0.0.1:{port}?pkt_size=1316");
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i"])
            .arg(clip("mmaction2_demo.mp4"))
            .args(["-an", "-c:v", "mpeg2video", "-g", "5", "-q:v", "4", "-f", "mpegts", &dest])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the ffmpeg CLI");
        Sender(child)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_live_udp_stream_is_classified_window_by_window_until_max_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sender = Sender::start(port);
    let m = model();
    let listen = format!("udp://127.0.0.1:{port}");
    let start = Instant::now();
    let o = vidi_in(
        dir.path(),
        &[
            "classify",
            "--live",
            &listen,
            "--max-seconds",
            "4",
            "--json",
            "--top-k",
            "2",
            "--model",
            m.to_str().unwrap(),
        ],
    );
    let took = start.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let labels: Vec<String> = {
        let c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(m.join("config.json")).unwrap()).unwrap();
        c["id2label"].as_object().unwrap().values().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    let lines: Vec<serde_json::Value> =
        BufReader::new(&o.stdout[..]).lines().map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect();
    // 28 fps, windows of 4 frames: about 7 a second; at least a few in 4 s.
    assert!(lines.len() >= 4, "{} windows: {}", lines.len(), String::from_utf8_lossy(&o.stderr));
    let mut last = -1.0;
    for l in &lines {
        let t = l["t_s"].as_f64().unwrap();
        assert!(t > last, "t_s must grow: {t} after {last}");
        last = t;
        let p = preds(&l["predictions"]);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|(label, s)| labels.contains(label) && (0.0..=1.0).contains(s)));
        assert!(l["lag_s"].as_f64().unwrap() >= 0.0);
    }
    assert!(last <= 6.0, "source time {last} s in a 4 s run");
}

#[test]
fn a_silent_stream_and_a_missing_camera_end_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let m = model();
    let listen = format!("udp://127.0.0.1:{}", free_udp_port());
    let start = Instant::now();
    let o = vidi_in(dir.path(), &["classify", "--live", &listen, "--timeout", "2", "--model", m.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(start.elapsed() < Duration::from_secs(20));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("error: {listen}: no video arrived for 2 s")), "{err}");
    let o = vidi_in(dir.path(), &["classify", "--live", "/dev/video97", "--model", m.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("error: /dev/video97: no such camera"));
    let o = vidi_in(dir.path(), &["classify", "--live", "ftp://x", "--model", m.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a live source"));
}

#[test]
fn the_classify_tab_takes_a_url_shows_its_timeline_and_seeks_where_clicked() {
    use egui_kittest::kittest::Queryable;
    let f = crate::app::fixture();
    let file = clip("mmaction2_demo.mp4");
    let srv = clip_server(std::fs::read(&file).unwrap());
    let url = format!("{}/resolve/main/clip.mp4", srv.url);
    let settings = vidi::app::Settings { use_model: f.model.to_string_lossy().into_owned(), ..Default::default() };
    let mut h = crate::app::harness(crate::app::new_app(settings, Vec::new()));
    h.step();
    h.get_by_role_and_label(eframe::egui::accesskit::Role::Button, "Classify").click();
    h.step();
    h.get_by_label("Video or URL").focus();
    h.step();
    h.get_by_label("Video or URL").type_text(&url);
    h.step();
    h.get_by_label("Add").click();
    h.step();
    h.get_by_label("Timeline: classify window after window along each video").click();
    h.step();
    h.get_by_label("Run classification").click();
    crate::app::settle(&mut h, 120);
    // Queued, and its result under the same name.
    assert_eq!(h.query_all_by_label(&url).count(), 2);
    // Windows of num_frames frames, one after the other, over ffprobe's frame count.
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.model.join("config.json")).unwrap()).unwrap();
    let span = cfg["num_frames"].as_u64().unwrap() as usize;
    let (frames, ..) = ffprobe_count(&file, "v:0");
    let windows = (frames - span) / span + 1;
    h.get_by_label_contains(&format!("{windows} windows of {span} frames; "));
    // The clip plays from its download; a click on the strip's middle goes to the window there.
    // Wait until the player holds the whole clip (it decodes while it plays), then click.
    let t = Instant::now();
    while !crate::app::frame_label_if_any(&h).is_some_and(|l| l.contains(&format!("/{frames} "))) {
        assert!(t.elapsed() < Duration::from_secs(60), "{:?}", crate::app::frame_label_if_any(&h));
        std::thread::sleep(Duration::from_millis(30));
        h.step();
    }
    h.get_by_label(&format!("timeline of {url}")).click();
    h.step();
    h.step();
    let fps = 28.0;
    let middle = frames as f64 / fps / 2.0;
    let start_frame = ((middle * fps) as usize / span) * span;
    let label = crate::app::frame_label(&h);
    assert!(label.starts_with(&format!("frame {}/", start_frame + 1)), "{label}, window at frame {start_frame}");
}

#[test]
fn the_classify_tab_classifies_a_live_stream_until_stopped() {
    use egui_kittest::kittest::Queryable;
    let f = crate::app::fixture();
    let port = free_udp_port();
    let _sender = Sender::start(port);
    let settings = vidi::app::Settings { use_model: f.model.to_string_lossy().into_owned(), ..Default::default() };
    let mut h = crate::app::harness(crate::app::new_app(settings, Vec::new()));
    h.step();
    h.get_by_role_and_label(eframe::egui::accesskit::Role::Button, "Classify").click();
    h.step();
    h.get_by_label("Source").focus();
    h.step();
    h.get_by_label("Source").type_text(&format!("udp://127.0.0.1:{port}"));
    h.step();
    h.get_by_label("Start live").click();
    crate::app::wait_for(&mut h, "windows dropped)", 30);
    h.get_by_label("live timeline");
    h.get_by_label("Stop live").click();
    crate::app::wait_for(&mut h, "windows in ", 20);
    assert!(!h.state().busy());
}

/// The Live part computes in the Classify tab's precision: f16 chosen there,
/// a UDP stream through the committed VideoMAE fixture on the GPU path
/// (lavapipe on CI) gives windows "computed in f16" whose top labels are the
/// model's, with scores of a softmax; without SHADER_F16, the one-line refusal.
#[test]
fn the_live_part_computes_in_f16_when_the_tab_says_f16() {
    use egui_kittest::kittest::{NodeT, Queryable};
    let model = fixtures().join("models/videomae_meanpool");
    let port = free_udp_port();
    let _sender = Sender::start(port);
    let settings = vidi::app::Settings {
        use_model: model.to_string_lossy().into_owned(),
        tab: vidi::app::Tab::Classify,
        ..Default::default()
    };
    let (mut h, has_f16) = crate::app::f16_harness(settings, Vec::new());
    h.get_by_label("Source").focus();
    h.step();
    h.get_by_label("Source").type_text(&format!("udp://127.0.0.1:{port}"));
    h.step();
    h.get_by_label("Start live").click();
    if !has_f16 {
        crate::app::wait_for(&mut h, "f16 is not available", 30);
        return;
    }
    crate::app::wait_for(&mut h, "windows dropped)", 60);
    h.get_by_label("computed in f16");
    let labels: Vec<String> = (0..5).map(|i| format!("class_{i}")).collect();
    let scores: Vec<f64> = h
        .query_all_by_label_contains("class_")
        .filter_map(|n| n.accesskit_node().label().or(n.accesskit_node().value()))
        .filter_map(|t| {
            let (label, score) = t.split_once("  ")?;
            assert!(labels.iter().any(|l| l == label), "'{t}' is not one of the model's labels");
            score.trim().parse().ok()
        })
        .collect();
    assert_eq!(scores.len(), 3, "the newest window's top 3: {scores:?}");
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)) && scores.iter().sum::<f64>() <= 1.0 + 1e-3, "{scores:?}");
    h.get_by_label("Stop live").click();
    crate::app::wait_for(&mut h, "windows in ", 30);
}

#[test]
fn a_segment_of_an_annotation_file_plays_its_range_alone() {
    use egui_kittest::kittest::Queryable;
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("match.mp4");
    std::fs::copy(clip("mmaction2_demo.mp4"), &long).unwrap();
    let csv = dir.path().join("ann.csv");
    std::fs::write(&csv, "video,label,start,end\nmatch.mp4,wrestling,2.0,4.0\nmatch.mp4,resting,6.0,7.0\n").unwrap();
    let settings = vidi::app::Settings {
        data_dir: csv.to_string_lossy().into_owned(),
        tab: vidi::app::Tab::Dataset,
        ..Default::default()
    };
    let mut h = crate::app::harness(crate::app::new_app(settings, Vec::new()));
    h.step();
    h.get_by_label("Open").click();
    crate::app::settle(&mut h, 60);
    h.get_by_label_contains("match.mp4 2.00").click();
    // The frames whose times lie in [2 s, 4 s): ffprobe's 28 fps constant rate gives 56.
    let t = Instant::now();
    loop {
        h.step();
        if crate::app::frame_label_if_any(&h).is_some_and(|l| l.contains("/56 ")) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{:?}", crate::app::frame_label_if_any(&h));
        std::thread::sleep(Duration::from_millis(30));
    }
    // Decoding has stopped at the segment's end: no frame past it arrives.
    std::thread::sleep(Duration::from_millis(500));
    h.step();
    assert!(crate::app::frame_label_if_any(&h).unwrap().contains("/56 "));
}
