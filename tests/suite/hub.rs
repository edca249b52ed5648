//! Dataset download through hf-hub against a local HTTP server (HF_ENDPOINT),
//! and safe extraction of archives.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// Serves `files` (URL path -> bytes) as the Hub's `resolve` endpoint does,
/// and a model repo's `tree` listing, on loopback; records every request line.
pub struct FakeHub {
    pub url: String,
    pub log: Arc<Mutex<Vec<String>>>,
    _thread: std::thread::JoinHandle<()>,
}

pub fn serve(files: HashMap<String, Vec<u8>>) -> FakeHub {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", server.server_addr().to_ip().expect("ip address"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let thread = std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let path = req.url().split('?').next().unwrap_or_default().to_string();
            log2.lock().unwrap().push(format!("{} {}", req.method(), path));
            // The tree listing of a model repo: its files under resolve/<rev>/, with sizes.
            if let ["api", "models", o, n, "tree", rev] =
                path.trim_start_matches('/').split('/').collect::<Vec<_>>().as_slice()
            {
                let prefix = format!("/{o}/{n}/resolve/{rev}/");
                let list: Vec<serde_json::Value> = files
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|p| (p, v.len())))
                    .map(|(p, size)| serde_json::json!({"type": "file", "oid": "0", "size": size, "path": p}))
                    .collect();
                let status = if list.is_empty() { 404 } else { 200 };
                let _ = req.respond(
                    tiny_http::Response::from_data(serde_json::Value::from(list).to_string().into_bytes())
                        .with_status_code(status),
                );
                continue;
            }
            let resp = match files.get(&path) {
                Some(body) => {
                    let etag = format!("\"{:016x}\"", body.len() as u64 * 2654435761);
                    tiny_http::Response::from_data(body.clone())
                        .with_header(tiny_http::Header::from_bytes("ETag", etag).unwrap())
                        .with_header(
                            tiny_http::Header::from_bytes("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
                                .unwrap(),
                        )
                }
                None => tiny_http::Response::from_data(b"not found".to_vec())
                    .with_status_code(404)
                    .with_header(tiny_http::Header::from_bytes("X-Error-Code", "EntryNotFound").unwrap()),
            };
            let _ = req.respond(resp);
        }
    });
    FakeHub { url, log, _thread: thread }
}

fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_path(name).unwrap();
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A header whose name or link is written raw, bypassing the tar crate's own checks.
fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn vidi(args: &[&str], hub: &FakeHub, home: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vidi"))
        .args(args)
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", home)
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_CACHE")
        .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
        .output()
        .expect("run vidi")
}

#[test]
fn download_dataset_fetches_into_the_cache_and_extracts() {
    let clip = std::fs::read(crate::clip("v_ApplyEyeMakeup_g01_c01.avi")).unwrap();
    let archive = tar_gz(&[
        ("UCF101_subset/train/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", &clip),
        ("UCF101_subset/test/ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi", &clip),
    ]);
    let mut files = HashMap::new();
    files.insert("/datasets/sayakpaul/ucf101-subset/resolve/main/UCF101_subset.tar.gz".to_string(), archive);
    let hub = serve(files);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hf");
    let out = dir.path().join("data");
    let o = vidi(&["download", "dataset", "sayakpaul/ucf101-subset", "--out", out.to_str().unwrap()], &hub, &home);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let extracted = out.join("UCF101_subset/train/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi");
    assert_eq!(std::fs::read(&extracted).unwrap(), clip);
    // In hf-hub's cache layout.
    let cached = home.join("hub/datasets--sayakpaul--ucf101-subset/snapshots/0123456789abcdef0123456789abcdef01234567/UCF101_subset.tar.gz");
    assert!(cached.exists(), "not in the cache: {}", cached.display());
    assert!(hub
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("GET /datasets/sayakpaul/ucf101-subset/resolve/main/")));
    // The extracted folder indexes as the guide's layout.
    let idx = vidi::dataset::index_folder(&out.join("UCF101_subset"), &Default::default()).unwrap();
    assert_eq!(idx.counts["train"]["ApplyEyeMakeup"], 1);

    // Extracting again refuses to overwrite, and says so in one line.
    let o = vidi(&["download", "dataset", "sayakpaul/ucf101-subset", "--out", out.to_str().unwrap()], &hub, &home);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("already exists") && err.trim().lines().count() == 1, "{err}");

    // A missing file is a clear error, not a panic.
    let o = vidi(&["download", "dataset", "someone/else", "--out", out.to_str().unwrap()], &hub, &home);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error:") && !err.contains("panicked"), "{err}");
}

#[test]
fn archives_escaping_the_target_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Box<dyn Fn(&mut tar::Builder<Vec<u8>>)>)> = vec![
        ("dotdot", Box::new(|b| raw_entry(b, "top/../../evil.txt", tar::EntryType::Regular, None, b"x"))),
        ("absolute", Box::new(|b| raw_entry(b, "/tmp/vidi-evil-absolute.txt", tar::EntryType::Regular, None, b"x"))),
        ("symlink", Box::new(|b| raw_entry(b, "top/link", tar::EntryType::Symlink, Some("../../outside"), b""))),
        ("hardlink", Box::new(|b| raw_entry(b, "top/hl", tar::EntryType::Link, Some("/etc/passwd"), b""))),
    ];
    for (name, add) in cases {
        let mut b = tar::Builder::new(Vec::new());
        raw_entry(&mut b, "top/ok.txt", tar::EntryType::Regular, None, b"fine");
        add(&mut b);
        let bytes = b.into_inner().unwrap();
        let archive = dir.path().join(format!("{name}.tar"));
        std::fs::File::create(&archive).unwrap().write_all(&bytes).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        let err = vidi::hub::extract_archive(&archive, &out, &mut |_, _| {}).unwrap_err();
        assert!(matches!(err, vidi::hub::HubError::UnsafeEntry { .. }), "{name}: {err}");
        assert!(!out.join("top/ok.txt").exists(), "{name}: something was extracted");
    }
    assert!(!dir.path().join("evil.txt").exists());
    assert!(!Path::new("/tmp/vidi-evil-absolute.txt").exists());
}
