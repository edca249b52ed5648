//! Sharing to the Hub against a local server (started here, on loopback) that
//! implements the endpoints vidi uses and records every request: login and
//! whoami, push (repo creation, pre-upload, commit) with its model card, the
//! token only ever in the Authorization header, 401/403 errors, and a round
//! trip push -> `vidi classify --model USER/NAME`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use base64::Engine;

const GOOD: &str = "hf_goodTOKENvalue123";
const READ_ONLY: &str = "hf_readOnlyTOKEN456";

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// repo id -> private flag
    repos: HashMap<String, bool>,
    /// "/owner/name/resolve/main/file" -> bytes
    files: HashMap<String, Vec<u8>>,
}

struct MiniHub {
    url: String,
    state: Arc<Mutex<State>>,
}

fn json(v: serde_json::Value, status: u16) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    tiny_http::Response::from_data(v.to_string().into_bytes())
        .with_status_code(status)
        .with_header(tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap())
}

fn start() -> MiniHub {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", server.server_addr().to_ip().expect("ip"));
    let state = Arc::new(Mutex::new(State::default()));
    let (st, base) = (state.clone(), url.clone());
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = Vec::new();
            let _ = req.as_reader().read_to_end(&mut body);
            let headers: Vec<(String, String)> =
                req.headers().iter().map(|h| (h.field.to_string(), h.value.to_string())).collect();
            let auth = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|h| h.1.clone());
            let user = match auth.as_deref() {
                Some(a) if a == format!("Bearer {GOOD}") => Some("alice"),
                Some(a) if a == format!("Bearer {READ_ONLY}") => Some("reader"),
                _ => None,
            };
            let method = req.method().to_string();
            let full = req.url().to_string();
            let path = full.split('?').next().unwrap_or_default().to_string();
            let mut s = st.lock().unwrap();
            s.seen.push(Seen { method: method.clone(), url: full.clone(), headers, body: body.clone() });
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let unauthorized =
                || json(serde_json::json!({"error": "Invalid credentials in Authorization header"}), 401);
            let resp = match (method.as_str(), parts.as_slice()) {
                ("GET", ["api", "whoami-v2"]) => match user {
                    Some(u) => json(serde_json::json!({"name": u, "type": "user", "fullname": "A. User"}), 200),
                    None => unauthorized(),
                },
                ("POST", ["api", "repos", "create"]) => {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let owner = v["organization"].as_str().unwrap_or("alice").to_string();
                    let id = format!("{owner}/{}", v["name"].as_str().unwrap_or_default());
                    match user {
                        None => unauthorized(),
                        Some(u) if u != owner || u == "reader" => json(
                            serde_json::json!({"error": "You don't have the rights to create a model under this namespace"}),
                            403,
                        ),
                        Some(_) if s.repos.contains_key(&id) => {
                            json(serde_json::json!({"error": "already exists"}), 409)
                        }
                        Some(_) => {
                            s.repos.insert(id.clone(), v["private"].as_bool().unwrap_or(false));
                            json(serde_json::json!({"url": format!("{base}/{id}")}), 200)
                        }
                    }
                }
                ("POST", ["api", "models", o, n, "preupload", _rev]) => {
                    if user.is_none() {
                        unauthorized()
                    } else {
                        let _ = (o, n);
                        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                        let files: Vec<serde_json::Value> = v["files"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .iter()
                            .map(|f| serde_json::json!({"path": f["path"], "uploadMode": "regular"}))
                            .collect();
                        json(serde_json::json!({"files": files}), 200)
                    }
                }
                ("POST", ["api", "models", o, n, "commit", rev]) => {
                    let id = format!("{o}/{n}");
                    if user != Some(*o) {
                        if user.is_none() {
                            unauthorized()
                        } else {
                            json(serde_json::json!({"error": "forbidden"}), 403)
                        }
                    } else if !s.repos.contains_key(&id) {
                        json(serde_json::json!({"error": "Repository not found"}), 404)
                    } else {
                        for line in String::from_utf8_lossy(&body).lines() {
                            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                            if v["key"] == "file" {
                                let data = base64::engine::general_purpose::STANDARD
                                    .decode(v["value"]["content"].as_str().unwrap_or_default())
                                    .unwrap_or_default();
                                let p = v["value"]["path"].as_str().unwrap_or_default();
                                s.files.insert(format!("/{id}/resolve/{rev}/{p}"), data);
                            }
                        }
                        json(
                            serde_json::json!({"commitOid": "4f1c0ffee4f1c0ffee4f1c0ffee4f1c0ffee4f1c", "commitUrl": format!("{base}/{id}/commit/4f1c")}),
                            200,
                        )
                    }
                }
                (_, [_, _, "resolve", ..]) => match s.files.get(&path) {
                    Some(data) => tiny_http::Response::from_data(data.clone())
                        .with_header(
                            tiny_http::Header::from_bytes("ETag", format!("\"{:x}\"", data.len() * 7919)).unwrap(),
                        )
                        .with_header(
                            tiny_http::Header::from_bytes("X-Repo-Commit", "4f1c0ffee4f1c0ffee4f1c0ffee4f1c0ffee4f1c")
                                .unwrap(),
                        ),
                    None => json(serde_json::json!({"error": "Entry not found"}), 404)
                        .with_header(tiny_http::Header::from_bytes("X-Error-Code", "EntryNotFound").unwrap()),
                },
                _ => json(serde_json::json!({"error": "not implemented here"}), 404),
            };
            drop(s);
            let _ = req.respond(resp);
        }
    });
    MiniHub { url, state }
}

fn vidi(hub: &MiniHub, home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_vidi"));
    c.args(args)
        .env("VIDI_DEVICE", "cpu")
        .env("HF_HOME", home)
        .env("HF_ENDPOINT", &hub.url)
        .env_remove("HF_TOKEN")
        .env_remove("HF_TOKEN_PATH")
        .env_remove("HF_HUB_CACHE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("run vidi");
    if let Some(mut si) = child.stdin.take() {
        let _ = si.write_all(stdin.unwrap_or("").as_bytes());
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A model folder inside a finished-looking run (config.json, metrics.jsonl, test-eval/report.json).
fn fake_run(dir: &Path) -> std::path::PathBuf {
    let src = crate::fixtures().join("models/videomae_meanpool");
    let best = dir.join("run/best");
    std::fs::create_dir_all(&best).unwrap();
    for f in ["config.json", "preprocessor_config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), best.join(f)).unwrap();
    }
    let cfg = vidi::train::TrainConfig {
        data: dir.join("my_clips"),
        model: "MCG-NJU/videomae-base".into(),
        ..Default::default()
    };
    std::fs::write(dir.join("run/config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    std::fs::write(
        dir.join("run/metrics.jsonl"),
        "{\"step\":10,\"epoch\":1,\"eval_accuracy\":0.5}\n{\"step\":20,\"epoch\":2,\"eval_accuracy\":0.75}\n{\"step\":20,\"test_accuracy\":0.8125}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("run/test-eval")).unwrap();
    let labels: Vec<String> = (0..5).map(|i| format!("class_{i}")).collect();
    let confusion: Vec<Vec<usize>> =
        (0..5).map(|i| (0..5).map(|j| if i == j { 3 } else { usize::from(j == 0) }).collect()).collect();
    std::fs::write(
        dir.join("run/test-eval/report.json"),
        serde_json::json!({"accuracy": 0.8125, "labels": labels, "confusion": confusion}).to_string(),
    )
    .unwrap();
    best
}

#[test]
fn login_push_and_classify_round_trip() {
    let hub = start();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let best = fake_run(work.path());
    let best_s = best.to_str().unwrap();

    // Not logged in: a clear error, nothing sent.
    let o = vidi(&hub, home.path(), &["push", best_s, "--repo", "alice/tiny-videomae"], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("not logged in"), "{}", text(&o));

    // A bad token is refused and not saved.
    let o = vidi(&hub, home.path(), &["login", "--token-stdin"], Some("hf_wrong\n"));
    assert!(!o.status.success());
    assert!(text(&o).contains("refused the token (401)"), "{}", text(&o));
    assert!(!home.path().join("token").exists());

    // A good token is checked, saved where the Hugging Face tools look, and never printed.
    let o = vidi(&hub, home.path(), &["login", "--token-stdin"], Some(&format!("{GOOD}\n")));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("logged in as alice"));
    assert_eq!(std::fs::read_to_string(home.path().join("token")).unwrap(), GOOD);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path().join("token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the token file is readable by others");
    }
    let o = vidi(&hub, home.path(), &["whoami"], None);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "alice");

    // Push.
    let o = vidi(&hub, home.path(), &["push", best_s, "--repo", "alice/tiny-videomae", "--private", "--json"], None);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["repo"], "alice/tiny-videomae");
    {
        let s = hub.state.lock().unwrap();
        assert_eq!(s.repos.get("alice/tiny-videomae"), Some(&true), "created private");
        let mut uploaded: Vec<&str> =
            s.files.keys().filter_map(|k| k.strip_prefix("/alice/tiny-videomae/resolve/main/")).collect();
        uploaded.sort();
        assert_eq!(uploaded, ["README.md", "config.json", "model.safetensors", "preprocessor_config.json"]);
        for f in ["config.json", "preprocessor_config.json", "model.safetensors"] {
            assert_eq!(
                s.files[&format!("/alice/tiny-videomae/resolve/main/{f}")],
                std::fs::read(best.join(f)).unwrap(),
                "{f} uploaded as is"
            );
        }
        let card = String::from_utf8(s.files["/alice/tiny-videomae/resolve/main/README.md"].clone()).unwrap();
        let front = card.split("---").nth(1).expect("YAML front matter");
        for want in [
            "library_name: transformers",
            "pipeline_tag: video-classification",
            "base_model: \"MCG-NJU/videomae-base\"",
            "- \"my_clips\"",
            "- \"class_4\"",
            "- accuracy",
        ] {
            assert!(front.contains(want), "model card metadata lacks {want}:\n{front}");
        }
        assert!(card.contains("| learning rate | 0.00005 |"), "{card}");
        assert!(card.contains("| val (best epoch) | 0.7500 |") && card.contains("| test | 0.8125 |"), "{card}");
        assert!(card.contains("| **class_1** | 1 | 3 | 0 | 0 | 0 |"), "confusion matrix:\n{card}");
        // The token travelled only in the Authorization header.
        for r in &s.seen {
            assert!(!r.url.contains(GOOD), "token in a URL: {}", r.url);
            assert!(!String::from_utf8_lossy(&r.body).contains(GOOD), "token in a {} body", r.url);
            for (k, v) in &r.headers {
                if !k.eq_ignore_ascii_case("authorization") {
                    assert!(!v.contains(GOOD), "token in header {k}");
                }
            }
        }
        assert!(s.seen.iter().any(|r| r.method == "POST" && r.url.contains("/commit/main")));
    }
    // Nothing vidi printed or wrote into the run holds the token.
    assert!(!text(&o).contains(GOOD));
    for e in walk(work.path()) {
        assert!(!String::from_utf8_lossy(&std::fs::read(&e).unwrap()).contains(GOOD), "{}", e.display());
    }

    // Round trip: classify with the pushed repo id equals classify with the local folder.
    let clip = crate::clip("asl_thanks.mkv");
    let clip_s = clip.to_str().unwrap();
    let remote = vidi(&hub, home.path(), &["classify", "--json", "--model", "alice/tiny-videomae", clip_s], None);
    let local = vidi(&hub, home.path(), &["classify", "--json", "--model", best_s, clip_s], None);
    assert!(remote.status.success(), "{}", text(&remote));
    let (r, l): (serde_json::Value, serde_json::Value) =
        (serde_json::from_slice(&remote.stdout).unwrap(), serde_json::from_slice(&local.stdout).unwrap());
    assert_eq!(r[0]["predictions"], l[0]["predictions"]);
    assert_eq!(r[0]["predictions"].as_array().unwrap().len(), 5);

    // Logout removes the token.
    let o = vidi(&hub, home.path(), &["logout"], None);
    assert!(o.status.success());
    assert!(!home.path().join("token").exists());
}

#[test]
fn push_errors_are_clear() {
    let hub = start();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let best = fake_run(work.path());
    let best_s = best.to_str().unwrap();
    std::fs::write(home.path().join("token"), READ_ONLY).unwrap();
    // 403: the token may not write there.
    let o = vidi(&hub, home.path(), &["push", best_s, "--repo", "alice/x"], None);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("403") && t.contains("may not create the repo alice/x"), "{t}");
    assert!(!t.contains(READ_ONLY));
    // 401: a revoked token.
    std::fs::write(home.path().join("token"), "hf_revoked").unwrap();
    let o = vidi(&hub, home.path(), &["push", best_s, "--repo", "alice/x"], None);
    assert!(text(&o).contains("refused the token (401)"), "{}", text(&o));
    assert!(!text(&o).contains("hf_revoked"));
    // Not a model folder, and a bad repo id: refused before any request.
    std::fs::write(home.path().join("token"), GOOD).unwrap();
    let before = hub.state.lock().unwrap().seen.len();
    let o = vidi(&hub, home.path(), &["push", work.path().to_str().unwrap(), "--repo", "alice/x"], None);
    assert!(text(&o).contains("no config.json"), "{}", text(&o));
    let o = vidi(&hub, home.path(), &["push", best_s, "--repo", "no-slash"], None);
    assert!(text(&o).contains("not a Hub repo id"), "{}", text(&o));
    assert_eq!(hub.state.lock().unwrap().seen.len(), before);
    // No network: a clear one-line error.
    let dead = MiniHub { url: "http://127.0.0.1:9".into(), state: hub.state.clone() };
    let o = vidi(&dead, home.path(), &["push", best_s, "--repo", "alice/x"], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("cannot reach the Hub"), "{}", text(&o));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The app's "Share to Hub" (Evaluate tab): the login state shown, the repo name
/// prefilled from the account and the run, one push with the model card, and
/// the files arriving as they are on disk.
#[cfg(feature = "gui")]
#[test]
fn the_app_shares_a_model_to_the_hub() {
    use eframe::egui;
    use egui_kittest::kittest::Queryable;
    use vidi::app::{Settings, Tab, VidiApp};
    let hub = start();
    let tmp = tempfile::tempdir().unwrap();
    let best = fake_run(tmp.path());
    let settings = Settings {
        run_dir: tmp.path().join("run").to_string_lossy().into_owned(),
        tab: Tab::Evaluate,
        ..Default::default()
    };
    let mut app = VidiApp::new(settings, vidi::backend::cpu(), Vec::new());
    app.hub = vidi::hub::HubSettings {
        endpoint: Some(hub.url.clone()),
        cache_dir: Some(tmp.path().join("cache")),
        token: Some(GOOD.into()),
        token_file: None,
    };
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1200.0, 1400.0))
        .build_ui_state(|ui, app: &mut VidiApp| app.show(ui), app);
    let step_until = |h: &mut egui_kittest::Harness<'_, VidiApp>, text: &str| {
        let t = std::time::Instant::now();
        while h.query_by_label_contains(text).is_none() {
            if t.elapsed().as_secs() >= 60 {
                use egui_kittest::kittest::NodeT;
                let all: Vec<String> = h
                    .root()
                    .children_recursive()
                    .filter_map(|n| n.accesskit_node().label().or(n.accesskit_node().value()))
                    .collect();
                panic!("'{text}' never appeared; the window shows {all:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            h.step();
        }
    };
    step_until(&mut h, "logged in as alice");
    // The repo name is prefilled: the account and the run folder's name.
    h.step();
    // The model's check ends with a line above the box: wait for the layout to settle before clicking.
    step_until(&mut h, "Ready: a model folder");
    h.step();
    h.get_by_role_and_label(egui::accesskit::Role::Button, "Share to Hub").click();
    step_until(&mut h, "pushed to");
    h.get_by_label_contains("vidi classify --model alice/run");
    let s = hub.state.lock().unwrap();
    for f in ["config.json", "preprocessor_config.json", "model.safetensors"] {
        let got = s.files.get(&format!("/alice/run/resolve/main/{f}")).unwrap_or_else(|| panic!("{f} not pushed"));
        assert_eq!(got, &std::fs::read(best.join(f)).unwrap(), "{f} differs");
    }
    let card = String::from_utf8(s.files["/alice/run/resolve/main/README.md"].clone()).unwrap();
    assert!(card.contains("pipeline_tag: video-classification") && card.contains("0.8125"), "{card}");
    // The token went in the Authorization header only.
    for r in &s.seen {
        assert!(!r.url.contains(GOOD) && !String::from_utf8_lossy(&r.body).contains(GOOD));
    }
    // ... and nowhere in the run folder.
    for f in walk(&tmp.path().join("run")) {
        assert!(!String::from_utf8_lossy(&std::fs::read(&f).unwrap()).contains(GOOD), "token in {}", f.display());
    }
}

/// The app's log-in box in place of `vidi login`: not logged in, a hidden
/// token field, a refused token said so in one line, a good one checked with
/// the Hub and saved, and the token never shown in the window.
#[cfg(feature = "gui")]
#[test]
fn the_app_logs_in_with_a_hidden_token_field() {
    use eframe::egui;
    use egui_kittest::kittest::{NodeT, Queryable};
    use vidi::app::{Settings, Tab, VidiApp};
    let hub = start();
    let tmp = tempfile::tempdir().unwrap();
    let best = fake_run(tmp.path());
    let settings = Settings {
        run_dir: tmp.path().join("run").to_string_lossy().into_owned(),
        use_model: best.to_string_lossy().into_owned(),
        tab: Tab::Evaluate,
        ..Default::default()
    };
    let token_file = tmp.path().join("hf").join("token");
    let mut app = VidiApp::new(settings, vidi::backend::cpu(), Vec::new());
    app.hub = vidi::hub::HubSettings {
        endpoint: Some(hub.url.clone()),
        cache_dir: Some(tmp.path().join("cache")),
        token: None,
        token_file: Some(token_file.clone()),
    };
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1200.0, 1400.0))
        .build_ui_state(|ui, app: &mut VidiApp| app.show(ui), app);
    let texts = |h: &egui_kittest::Harness<'_, VidiApp>| -> Vec<String> {
        h.root()
            .children_recursive()
            .filter_map(|n| n.accesskit_node().label().or(n.accesskit_node().value()))
            .collect()
    };
    let step_until = |h: &mut egui_kittest::Harness<'_, VidiApp>, text: &str| {
        let t = std::time::Instant::now();
        while h.query_by_label_contains(text).is_none() {
            assert!(t.elapsed().as_secs() < 60, "'{text}' never appeared; the window shows {:?}", texts(h));
            std::thread::sleep(std::time::Duration::from_millis(20));
            h.step();
        }
    };
    step_until(&mut h, "Log in with a Hub access token");
    // No command to type: a field, and the field hides what is typed.
    assert!(texts(&h).iter().all(|t| !t.contains("vidi login")), "{:?}", texts(&h));
    let field = egui::accesskit::Role::PasswordInput;
    h.get_by_role_and_label(field, "Hub token").focus();
    h.step();
    h.get_by_role_and_label(field, "Hub token").type_text("hf_wrong");
    h.step();
    h.get_by_role_and_label(egui::accesskit::Role::Button, "Log in").click();
    step_until(&mut h, "refused the token");
    assert!(!token_file.exists(), "a refused token was saved");
    h.get_by_role_and_label(field, "Hub token").focus();
    h.step();
    h.get_by_role_and_label(field, "Hub token").type_text(GOOD);
    h.step();
    assert!(texts(&h).iter().all(|t| !t.contains(GOOD)), "the token shows in the window: {:?}", texts(&h));
    h.get_by_role_and_label(egui::accesskit::Role::Button, "Log in").click();
    step_until(&mut h, "logged in as alice");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), GOOD);
    assert!(texts(&h).iter().all(|t| !t.contains(GOOD)));
    // The Hub saw the refused token, then the good one, on whoami.
    let s = hub.state.lock().unwrap();
    let whoami: Vec<_> = s.seen.iter().filter(|r| r.url.contains("whoami-v2")).collect();
    assert!(whoami.len() >= 2, "{} whoami requests", whoami.len());
}
