//! Downloads against servers that misbehave: silent, stalling, cut short,
//! sending a web page, a wrong size or a wrong checksum, and archives that
//! expand far past their size. Each server is a real socket on loopback that
//! this file scripts byte by byte, standing in for the Hub (`HF_ENDPOINT`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";
const REPO: &str = "someone/clips";
const FILE: &str = "data.bin";

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
}

/// A scripted server: `answer` writes what it likes for each request (the
/// request's number, counted from 0, and the request).
pub struct Server {
    pub url: String,
    pub log: Arc<Mutex<Vec<Req>>>,
}

pub fn server(answer: impl Fn(usize, &Req, &mut TcpStream) + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let (log2, answer, count) = (log.clone(), Arc::new(answer), Arc::new(AtomicUsize::new(0)));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (log, answer, count) = (log2.clone(), answer.clone(), count.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                // Requests on this connection, one after the other (keep-alive).
                while let Some(req) = read_request(&mut reader) {
                    log.lock().unwrap().push(req.clone());
                    answer(count.fetch_add(1, Ordering::SeqCst), &req, &mut conn);
                }
            });
        }
    });
    Server { url, log }
}

fn read_request(r: &mut impl BufRead) -> Option<Req> {
    let mut line = String::new();
    r.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut range = None;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok().filter(|n| *n > 0)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    Some(Req { method, path, range })
}

/// Writes a status line, headers and `body`.
pub fn send(s: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let _ = s.flush();
}

/// Says nothing more on `s` until the client hangs up.
pub fn stall(s: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// The Hub's answer to HEAD: the file's ETag, commit and size.
pub fn head_ok(s: &mut TcpStream, etag: &str, size: usize) {
    let headers = [
        ("ETag", format!("\"{etag}\"")),
        ("X-Repo-Commit", COMMIT.to_string()),
        ("Content-Length", size.to_string()),
        ("Content-Type", "application/octet-stream".to_string()),
    ];
    send(s, "200 OK", &headers, b"");
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes that are not all alike, so a misplaced piece shows.
fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Runs the vidi binary against `url` with the Hub cache under `home`; a
/// run that hangs is killed after a minute and fails the test.
fn vidi(args: &[&str], url: &str, home: &Path, env: &[(&str, &str)]) -> (Output, Duration) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vidi"))
        .args(args)
        .env("HF_ENDPOINT", url)
        .env("HF_HOME", home)
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_CACHE")
        .env_remove("VIDI_TIMEOUT")
        .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vidi");
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vidi {args:?} still ran after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), t.elapsed())
}

fn download_file(url: &str, home: &Path, extra: &[&str]) -> (Output, Duration) {
    let mut args = vec!["download", "dataset", REPO, "--file", FILE, "--no-extract"];
    args.extend_from_slice(extra);
    vidi(&args, url, home, &[])
}

fn repo_dir(home: &Path) -> PathBuf {
    home.join("hub").join(format!("datasets--{}", REPO.replace('/', "--")))
}

fn snapshot(home: &Path) -> PathBuf {
    repo_dir(home).join("snapshots").join(COMMIT).join(FILE)
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// The one `error:` line of a failed run.
fn error_line(o: &Output) -> String {
    assert!(!o.status.success(), "it succeeded: {}", String::from_utf8_lossy(&o.stdout));
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert!(err.starts_with("error: ") && err.lines().count() == 1 && !err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_server_that_never_answers_ends_in_one_timeout_error() {
    // Accepts every connection and never says a word.
    let held = Arc::new(Mutex::new(Vec::new()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held2 = held.clone();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            held2.lock().unwrap().push(c);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hf");
    let (o, took) = vidi(
        &["download", "dataset", "sayakpaul/ucf101-subset", "--timeout", "2", "--out", dir.path().to_str().unwrap()],
        &url,
        &home,
        &[],
    );
    let err = error_line(&o);
    assert!(err.contains("timed out") && err.contains("2 s") && err.contains("--timeout"), "{err}");
    // Three tries of 2 s and the pauses between them.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(held.lock().unwrap().len() >= 3, "it did not try again");
    assert!(files_under(&home).is_empty(), "{:?}", files_under(&home));
    // VIDI_TIMEOUT sets it where there is no flag (a model, too).
    let (o, took) = vidi(&["download", "model", "someone/model"], &url, &home, &[("VIDI_TIMEOUT", "1")]);
    let err = error_line(&o);
    assert!(err.contains("timed out") && err.contains("1 s"), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    // A limit that is not a number of seconds is refused before anything is asked.
    let (o, _) = vidi(&["download", "model", "someone/model"], &url, &home, &[("VIDI_TIMEOUT", "soon")]);
    assert!(error_line(&o).contains("VIDI_TIMEOUT"));
}

#[test]
fn a_body_that_stalls_resumes_from_where_it_stopped() {
    let data = content(5000);
    let etag = sha256_hex(&data);
    let (d, e) = (data.clone(), etag.clone());
    let hub = server(move |_, req, s| {
        if req.method == "HEAD" {
            return head_ok(s, &e, d.len());
        }
        match req.range.as_deref() {
            // The first GET: the headers, 1,000 bytes, then silence.
            None => {
                send(s, "200 OK", &[("Content-Length", d.len().to_string())], &d[..1000]);
                stall(s);
            }
            Some(r) => {
                let from: usize = r.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
                let range = format!("bytes {from}-{}/{}", d.len() - 1, d.len());
                let headers = [("Content-Length", (d.len() - from).to_string()), ("Content-Range", range)];
                send(s, "206 Partial Content", &headers, &d[from..]);
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hf");
    let (o, took) = download_file(&hub.url, &home, &["--timeout", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(std::fs::read(snapshot(&home)).unwrap(), data);
    let gets: Vec<(String, Option<String>)> = hub
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| (r.path.clone(), r.range.clone()))
        .collect();
    let path = format!("/datasets/{REPO}/resolve/main/{FILE}");
    assert_eq!(gets, [(path.clone(), None), (path, Some("bytes=1000-".to_string()))]);
    // Only the blob and its link: no partial file left over.
    let mut left: Vec<String> = files_under(&repo_dir(&home))
        .iter()
        .map(|p| p.strip_prefix(repo_dir(&home)).unwrap().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [format!("blobs/{etag}"), "refs/main".to_string(), format!("snapshots/{COMMIT}/{FILE}")]);
}

#[test]
fn a_download_cut_short_is_not_cached_and_the_next_run_resumes_it() {
    let data = content(4000);
    let etag = sha256_hex(&data);
    let healthy = Arc::new(AtomicBool::new(false));
    let (d, e, h) = (data.clone(), etag.clone(), healthy.clone());
    let hub = server(move |_, req, s| {
        if req.method == "HEAD" {
            return head_ok(s, &e, d.len());
        }
        let from =
            req.range.as_deref().map_or(0, |r| r.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap());
        if !h.load(Ordering::SeqCst) {
            // Cut short: 1,000 bytes of the 4,000 announced, then the connection closes.
            send(s, "200 OK", &[("Content-Length", d.len().to_string()), ("Connection", "close".into())], &d[..1000]);
            let _ = s.shutdown(std::net::Shutdown::Both);
            return;
        }
        let range = format!("bytes {from}-{}/{}", d.len() - 1, d.len());
        let headers = [("Content-Length", (d.len() - from).to_string()), ("Content-Range", range)];
        send(s, "206 Partial Content", &headers, &d[from..]);
    });
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hf");
    let (o, _) = download_file(&hub.url, &home, &["--timeout", "2"]);
    let err = error_line(&o);
    assert!(err.contains("1000 of 4000 bytes") && err.contains("resumes"), "{err}");
    // Nothing that looks complete: no link, no blob, only the marked partial file.
    assert!(!snapshot(&home).exists());
    let blobs = repo_dir(&home).join("blobs");
    assert!(!blobs.join(&etag).exists());
    assert_eq!(std::fs::read(blobs.join(format!("{etag}.incomplete"))).unwrap(), &data[..1000]);

    healthy.store(true, Ordering::SeqCst);
    hub.log.lock().unwrap().clear();
    let (o, _) = download_file(&hub.url, &home, &["--timeout", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(snapshot(&home)).unwrap(), data);
    let gets: Vec<Option<String>> =
        hub.log.lock().unwrap().iter().filter(|r| r.method == "GET").map(|r| r.range.clone()).collect();
    assert_eq!(gets, [Some("bytes=1000-".to_string())]);
    assert!(!blobs.join(format!("{etag}.incomplete")).exists());
}

#[test]
fn web_pages_and_wrong_sizes_are_refused_and_nothing_is_cached() {
    let data = content(3000);
    let page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>".to_vec();
    // (what the GET answers, what the error says)
    type Answer = Box<dyn Fn(&mut TcpStream) + Send + Sync>;
    let (p1, p2, d1) = (page.clone(), page.clone(), data.clone());
    let cases: Vec<(&str, Answer, &str)> = vec![
        (
            "a page as text/html",
            Box::new(move |s| {
                send(
                    s,
                    "200 OK",
                    &[("Content-Type", "text/html".into()), ("Content-Length", p1.len().to_string())],
                    &p1,
                )
            }),
            "web page",
        ),
        (
            "a page as octet-stream",
            Box::new(move |s| {
                // No type and no length: only the bytes give it away.
                send(s, "200 OK", &[("Connection", "close".into())], &p2);
                let _ = s.shutdown(std::net::Shutdown::Both);
            }),
            "web page",
        ),
        (
            "a size other than the Hub's",
            Box::new(move |s| send(s, "200 OK", &[("Content-Length", "2000".into())], &d1[..2000])),
            "says the file has 3000",
        ),
    ];
    for (name, answer, says) in cases {
        let (d, e) = (data.clone(), sha256_hex(&data));
        let hub = server(move |_, req, s| if req.method == "HEAD" { head_ok(s, &e, d.len()) } else { answer(s) });
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("hf");
        let (o, _) = download_file(&hub.url, &home, &["--timeout", "2"]);
        let err = error_line(&o);
        assert!(err.contains(says) && err.contains("nothing was cached"), "{name}: {err}");
        assert!(files_under(&repo_dir(&home)).is_empty(), "{name}: {:?}", files_under(&home));
        // Refused at once, not tried again.
        assert_eq!(hub.log.lock().unwrap().iter().filter(|r| r.method == "GET").count(), 1, "{name}");
    }
    // The Hub's own answer to HEAD being a page is refused too.
    let hub = server(|_, _, s| {
        send(s, "200 OK", &[("Content-Type", "text/html".into()), ("Content-Length", "0".into())], b"")
    });
    let dir = tempfile::tempdir().unwrap();
    let (o, _) = download_file(&hub.url, &dir.path().join("hf"), &["--timeout", "2"]);
    assert!(error_line(&o).contains("web page"));
}

#[test]
fn a_wrong_sha256_is_refused() {
    let data = content(2500);
    let other = sha256_hex(b"something else");
    let d = data.clone();
    let hub = server(move |_, req, s| {
        // An LFS file: its metadata in the X-Linked-* headers.
        let headers = [
            ("ETag", "\"0123\"".to_string()),
            ("X-Linked-Etag", format!("\"{other}\"")),
            ("X-Linked-Size", d.len().to_string()),
            ("X-Repo-Commit", COMMIT.to_string()),
            ("Content-Length", d.len().to_string()),
        ];
        send(s, "200 OK", &headers, if req.method == "HEAD" { b"" } else { &d });
    });
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hf");
    let (o, _) = download_file(&hub.url, &home, &["--timeout", "2"]);
    let err = error_line(&o);
    let want = format!("checksum mismatch: the Hub says sha256 {}", sha256_hex(b"something else"));
    assert!(err.contains(&want) && err.contains(&sha256_hex(&data)), "{err}");
    assert!(files_under(&repo_dir(&home)).is_empty(), "{:?}", files_under(&home));
}

#[test]
fn cancelling_stops_a_stalled_download_at_once_and_removes_its_part() {
    let data = content(6000);
    let d = data.clone();
    let hub = server(move |_, req, s| {
        if req.method == "HEAD" {
            return head_ok(s, "00aa11bb", d.len());
        }
        send(s, "200 OK", &[("Content-Length", d.len().to_string())], &d[..1000]);
        stall(s);
    });
    let dir = tempfile::tempdir().unwrap();
    let settings = vidi::hub::HubSettings {
        endpoint: Some(hub.url.clone()),
        cache_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let cancel = AtomicBool::new(false);
    let got = Arc::new(AtomicUsize::new(0));
    let got2 = got.clone();
    let progress = vidi::hub::progress(move |t| got2.store(t.done as usize, Ordering::SeqCst));
    let opts = vidi::hub::DownloadOptions {
        progress: Some(progress),
        cancel: Some(&cancel),
        timeout: Some(Duration::from_secs(60)),
    };
    let part = dir.path().join("datasets--someone--clips/blobs/00aa11bb.incomplete");
    let (result, waited) = std::thread::scope(|scope| {
        let run = scope.spawn(|| vidi::hub::download_dataset_file_opts(REPO, FILE, None, &settings, &opts));
        let t = Instant::now();
        while got.load(Ordering::SeqCst) < 1000 {
            assert!(t.elapsed() < Duration::from_secs(10), "the first bytes never came");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 1000);
        let t = Instant::now();
        cancel.store(true, Ordering::SeqCst);
        (run.join().unwrap(), t.elapsed())
    });
    assert!(matches!(result, Err(vidi::hub::HubError::Cancelled)), "{result:?}");
    assert!(waited < Duration::from_secs(2), "took {waited:?} to stop");
    assert!(!part.exists(), "the partial file stayed");
}

/// A `.tar.gz` holding one file of `zeros` zero bytes.
fn zeros_tar_gz(name: &str, zeros: u64) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_size(zeros);
    h.set_mode(0o644);
    h.set_cksum();
    gz.write_all(h.as_bytes()).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = zeros + 1024; // the data, its padding and the end-of-archive blocks
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        gz.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    gz.finish().unwrap()
}

#[test]
fn an_archive_bomb_is_refused_before_anything_is_written() {
    // 1.1 GiB of zeros in about a megabyte: past the 1 GiB floor and past 100 times its size.
    let zeros = (1u64 << 30) + (100 << 20);
    let bomb = zeros_tar_gz("bomb/zeros.bin", zeros);
    assert!((bomb.len() as u64) * vidi::hub::MAX_EXPANSION_RATIO < vidi::hub::EXPANSION_FLOOR_BYTES);
    let mut files = HashMap::new();
    files.insert("/datasets/sayakpaul/ucf101-subset/resolve/main/UCF101_subset.tar.gz".to_string(), bomb);
    let hub = crate::hub::serve(files);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let (o, took) = vidi(
        &["download", "dataset", "sayakpaul/ucf101-subset", "--out", out.to_str().unwrap()],
        &hub.url,
        &dir.path().join("hf"),
        &[],
    );
    let err = error_line(&o);
    assert!(err.contains("refusing to extract") && err.contains("archive bomb") && err.contains("1.0 GiB"), "{err}");
    assert!(files_under(&out).is_empty(), "{:?}", files_under(&out));
    // Refused from the headers: the gigabyte was never written, nor even inflated.
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn the_expansion_limit_holds_for_the_bytes_and_for_oversized_headers() {
    let dir = tempfile::tempdir().unwrap();
    let small = vidi::hub::ExpansionLimit { ratio: 4, floor_bytes: 1 << 20 };
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    // 3 MiB of zeros: far past 4 times its size and past the 1 MiB floor.
    let zeros = write("zeros.tar.gz", &zeros_tar_gz("top/zeros.bin", 3 << 20));
    let out = dir.path().join("out-zeros");
    let err = vidi::hub::extract_archive_with(&zeros, &out, small, None, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, vidi::hub::HubError::TooLarge { .. }), "{err}");
    assert!(files_under(&out).is_empty());
    // The same archive within a larger limit extracts.
    let roomy = vidi::hub::ExpansionLimit { ratio: 4, floor_bytes: 8 << 20 };
    vidi::hub::extract_archive_with(&zeros, &out, roomy, None, &mut |_, _| {}).unwrap();
    assert_eq!(std::fs::metadata(out.join("top/zeros.bin")).unwrap().len(), 3 << 20);
    // A 4 MiB extended header, which the tar reader would hold in memory
    // before yielding any entry, is stopped by the limit on the stream itself.
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best()));
    let pax = vec![b'a'; 4 << 20];
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(pax.len() as u64);
    h.set_cksum();
    b.append(&h, &pax[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("top/ok.txt").unwrap();
    h.set_size(2);
    h.set_cksum();
    b.append(&h, &b"ok"[..]).unwrap();
    let pax = write("pax.tar.gz", &b.into_inner().unwrap().finish().unwrap());
    let out = dir.path().join("out-pax");
    let err = vidi::hub::extract_archive_with(&pax, &out, small, None, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, vidi::hub::HubError::TooLarge { .. }), "{err}");
    assert!(!out.join("top/ok.txt").exists());
}
