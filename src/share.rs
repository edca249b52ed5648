//! Sharing a fine-tuned model: log in to the Hugging Face Hub, and push a
//! model folder (transformers layout) with a generated model card — the
//! guide's `trainer.push_to_hub()`.
//!
//! The token is stored where the Hugging Face tools look (`$HF_TOKEN_PATH`,
//! else `$HF_HOME/token`, else `~/.cache/huggingface/token`; `HF_TOKEN` in the
//! environment wins over the file). It is only ever sent in the
//! `Authorization` header: never printed, logged, written into a run folder,
//! or put in an error message.

use std::path::{Path, PathBuf};

use hf_hub::repository::{AddSource, CommitOperation};
use hf_hub::{HFClient, HFClientSync, HFError};

use crate::hub::HubSettings;
use crate::model::ModelConfig;

/// Files of an exported model that a push uploads (plus the generated README.md).
pub const MODEL_FILES: [&str; 3] = ["config.json", "preprocessor_config.json", "model.safetensors"];

/// What went wrong sharing.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// No token anywhere.
    #[error("not logged in: run `vidi login` (or set HF_TOKEN)")]
    NotLoggedIn,
    /// The Hub refused the token.
    #[error("the Hub at {endpoint} refused the token (401): log in again with a valid token (`vidi login`)")]
    BadToken {
        /// The Hub.
        endpoint: String,
    },
    /// The token may not write there.
    #[error("the token may not {action} (403 forbidden): use a token with write access to that namespace")]
    Forbidden {
        /// What was refused.
        action: String,
    },
    /// The Hub cannot be reached.
    #[error("cannot reach the Hub at {endpoint}: {reason}")]
    Network {
        /// The Hub.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The repo id is not `owner/name`.
    #[error("'{0}' is not a Hub repo id (expected owner/name)")]
    BadRepoId(String),
    /// The folder is not an exported model.
    #[error("{path}: {reason}")]
    NotAModel {
        /// The folder.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// Another Hub error.
    #[error("{what}: {reason}")]
    Hub {
        /// What was being done.
        what: String,
        /// The Hub's answer.
        reason: String,
    },
    /// A local file error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Where the token file is.
pub fn token_path() -> PathBuf {
    crate::hub::default_token_file()
}

/// The token in use (`HF_TOKEN`, else the token file), if any.
pub fn current_token() -> Option<String> {
    if let Ok(t) = std::env::var("HF_TOKEN") {
        if !t.trim().is_empty() {
            return Some(t.trim().to_string());
        }
    }
    std::fs::read_to_string(token_path()).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

fn endpoint(hub: &HubSettings) -> String {
    hub.endpoint_url().trim_end_matches('/').to_string()
}

fn client(token: &str, hub: &HubSettings) -> Result<HFClientSync, ShareError> {
    HFClient::builder()
        .endpoint(endpoint(hub))
        .token(token)
        .build_sync()
        .map_err(|e| classify(e, "create a Hub client", hub))
}

/// The token for `hub`: its own, else `HF_TOKEN`, else the saved one.
fn token_for(hub: &HubSettings) -> Option<String> {
    hub.token.clone().or_else(current_token)
}

/// Turns an hf-hub error into a clear one, with no token in it.
fn classify(e: HFError, action: &str, hub: &HubSettings) -> ShareError {
    let endpoint = endpoint(hub);
    match e {
        HFError::AuthRequired { .. } => ShareError::BadToken { endpoint },
        HFError::Forbidden { .. } => ShareError::Forbidden { action: action.to_string() },
        HFError::Request { source, .. } => ShareError::Network { endpoint, reason: strip_url(&source.to_string()) },
        other => ShareError::Hub { what: action.to_string(), reason: other.to_string() },
    }
}

/// Keeps a reqwest message short: the kind of failure without query strings.
fn strip_url(s: &str) -> String {
    s.split(" for url").next().unwrap_or(s).to_string()
}

/// The Hub account a token belongs to.
pub fn whoami_with(token: &str) -> Result<String, ShareError> {
    whoami_at(token, &HubSettings::default())
}

fn whoami_at(token: &str, hub: &HubSettings) -> Result<String, ShareError> {
    let user = client(token, hub)?.whoami().send().map_err(|e| classify(e, "read the account", hub))?;
    Ok(user.username)
}

/// The account of the token in use.
pub fn whoami() -> Result<String, ShareError> {
    whoami_on(&HubSettings::default())
}

/// [`whoami`] on the Hub `hub` names, with its token when it has one.
pub fn whoami_on(hub: &HubSettings) -> Result<String, ShareError> {
    whoami_at(&token_for(hub).ok_or(ShareError::NotLoggedIn)?, hub)
}

/// Checks `token` with the Hub, then stores it (mode 0600, written atomically).
/// Returns the account name and where the token went.
pub fn login(token: &str) -> Result<(String, PathBuf), ShareError> {
    login_on(token, &HubSettings::default())
}

/// [`login`], the token checked with the Hub `hub` names.
pub fn login_on(token: &str, hub: &HubSettings) -> Result<(String, PathBuf), ShareError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(ShareError::BadToken { endpoint: endpoint(hub) });
    }
    let user = whoami_at(token, hub)?;
    let path = hub.token_file.clone().unwrap_or_else(token_path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ShareError::Io { path: dir.into(), source })?;
    }
    crate::util::write_atomic(&path, token.as_bytes())
        .map_err(|source| ShareError::Io { path: path.clone(), source })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok((user, path))
}

/// Removes the stored token. Returns whether there was one.
pub fn logout() -> Result<bool, ShareError> {
    let path = token_path();
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ShareError::Io { path, source }),
    }
}

/// What a push sent.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PushReport {
    /// The repo.
    pub repo: String,
    /// Its URL.
    pub url: String,
    /// Files uploaded.
    pub files: Vec<String>,
    /// The commit, when the Hub says.
    pub commit: Option<String>,
}

/// The training run a model folder came from (`RUN/best`, `RUN/checkpoint-*`), if any.
fn run_of(model_dir: &Path) -> Option<PathBuf> {
    let run = model_dir.parent()?;
    let raw = std::fs::read_to_string(run.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&raw).ok()?;
    (v.get("data").is_some() && v.get("lr").is_some()).then(|| run.to_path_buf())
}

fn yaml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The model card: YAML metadata (library, pipeline tag, base model, dataset,
/// labels, metrics) and, for a model from a run, its training configuration,
/// val/test metrics and test confusion matrix.
pub fn model_card(model_dir: &Path, repo: &str) -> Result<String, ShareError> {
    let config = ModelConfig::from_dir(model_dir)
        .map_err(|e| ShareError::NotAModel { path: model_dir.into(), reason: e.to_string() })?;
    let run = run_of(model_dir);
    let run_cfg: Option<serde_json::Value> = run
        .as_ref()
        .and_then(|r| std::fs::read_to_string(r.join("config.json")).ok())
        .and_then(|s| serde_json::from_str(&s).ok());
    let metrics: Vec<serde_json::Value> = run
        .as_ref()
        .and_then(|r| std::fs::read_to_string(r.join("metrics.jsonl")).ok())
        .map(|s| s.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
        .unwrap_or_default();
    let test_report: Option<crate::eval::EvalReportFile> = run
        .as_ref()
        .and_then(|r| std::fs::read_to_string(r.join("test-eval/report.json")).ok())
        .and_then(|s| serde_json::from_str(&s).ok());
    let base = run_cfg.as_ref().and_then(|c| c["model"].as_str()).map(str::to_string);
    let dataset = run_cfg
        .as_ref()
        .and_then(|c| c["data"].as_str())
        .and_then(|d| Path::new(d).file_name().map(|n| n.to_string_lossy().into_owned()));
    let best_val = metrics
        .iter()
        .filter_map(|m| m["eval_accuracy"].as_f64())
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
    let test_acc = metrics.iter().rev().find_map(|m| m["test_accuracy"].as_f64());

    let mut y = String::from("---\nlibrary_name: transformers\npipeline_tag: video-classification\n");
    y.push_str(&format!("tags:\n- video-classification\n- {}\n- vidi\n", config.arch.model_type()));
    // A base model the Hub knows is an owner/name id; a local folder is not named.
    if let Some(b) = base.as_ref().filter(|b| b.contains('/') && !Path::new(b.as_str()).exists()) {
        y.push_str(&format!("base_model: {}\n", yaml_str(b)));
    }
    if let Some(d) = &dataset {
        y.push_str(&format!("datasets:\n- {}\n", yaml_str(d)));
    }
    if best_val.is_some() || test_acc.is_some() {
        y.push_str("metrics:\n- accuracy\n");
    }
    y.push_str("widget: []\n");
    y.push_str(&format!(
        "labels:\n{}",
        config.labels.iter().map(|l| format!("- {}\n", yaml_str(l))).collect::<String>()
    ));
    y.push_str("---\n\n");

    let mut md = y;
    md.push_str(&format!("# {}\n\n", repo.rsplit('/').next().unwrap_or(repo)));
    md.push_str(&format!(
        "A {} video classifier{}{} for {} labels.\n\n",
        config.arch.classifier_class(),
        base.as_ref().map(|b| format!(" fine-tuned from `{b}`")).unwrap_or_default(),
        dataset.as_ref().map(|d| format!(" on `{d}`")).unwrap_or_default(),
        config.labels.len()
    ));
    md.push_str("## Labels\n\n");
    md.push_str(&config.labels.iter().enumerate().map(|(i, l)| format!("{i}. {l}\n")).collect::<String>());
    md.push_str("\n## Use\n\n```python\nfrom transformers import pipeline\n\n");
    md.push_str(&format!("pipe = pipeline(\"video-classification\", model=\"{repo}\")\npipe(\"clip.mp4\")\n```\n\n"));
    md.push_str(&format!("or, with vidi: `vidi classify --model {repo} clip.mp4`\n\n"));
    md.push_str(&format!(
        "Input: {} frames of {}x{} pixels, normalised with mean {:?} and std {:?} (see preprocessor_config.json).\n\n",
        config.num_frames,
        config.image_size,
        config.image_size,
        read_mean_std(model_dir).0,
        read_mean_std(model_dir).1
    ));
    if let Some(c) = &run_cfg {
        md.push_str("## Training\n\n| setting | value |\n|---|---|\n");
        let rows = [
            ("base model", "model"),
            ("epochs", "epochs"),
            ("batch size", "batch_size"),
            ("gradient accumulation", "grad_accum"),
            ("learning rate", "lr"),
            ("warm-up ratio", "warmup_ratio"),
            ("max steps", "max_steps"),
            ("seed", "seed"),
            ("frame sampling rate", "sample_rate"),
            ("horizontal flip p", "flip_p"),
        ];
        for (name, key) in rows {
            if let Some(v) = c.get(key).filter(|v| !v.is_null()) {
                md.push_str(&format!("| {name} | {} |\n", v.to_string().trim_matches('"')));
            }
        }
        if let Some(a) = c.get("adamw") {
            md.push_str(&format!(
                "| optimizer | AdamW (betas {}, {}; eps {}; weight decay {}); gradient norm clipped at {} |\n",
                a["beta1"], a["beta2"], a["eps"], a["weight_decay"], a["max_grad_norm"]
            ));
        }
        if c.get("balance").and_then(|b| b.as_bool()) == Some(true) {
            md.push_str("| class balancing | classes sampled evenly each epoch (--balance) |\n");
        }
        if c.get("precision").and_then(|p| p.as_str()) == Some("f16") {
            md.push_str(
                "| precision | mixed: products in f16, f32 weights and AdamW moments, dynamic loss scaling (--precision f16) |\n",
            );
        }
        md.push_str("| schedule | linear warm-up, then linear decay |\n\n");
    }
    if best_val.is_some() || test_acc.is_some() {
        md.push_str("## Results\n\n| split | accuracy |\n|---|---|\n");
        if let Some(v) = best_val {
            md.push_str(&format!("| val (best epoch) | {:.4} |\n", v));
        }
        if let Some(t) = test_acc {
            md.push_str(&format!("| test | {:.4} |\n", t));
        }
        md.push('\n');
    }
    if let Some(r) = &test_report {
        md.push_str("### Test confusion matrix (rows: true, columns: predicted)\n\n| |");
        for l in &r.labels {
            md.push_str(&format!(" {l} |"));
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(r.labels.len()));
        md.push('\n');
        for (i, row) in r.confusion.iter().enumerate() {
            md.push_str(&format!("| **{}** |", r.labels.get(i).map(String::as_str).unwrap_or("?")));
            for c in row {
                md.push_str(&format!(" {c} |"));
            }
            md.push('\n');
        }
        md.push('\n');
    }
    Ok(md)
}

fn read_mean_std(dir: &Path) -> (Vec<f64>, Vec<f64>) {
    let v: serde_json::Value = std::fs::read_to_string(dir.join("preprocessor_config.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let list = |k: &str| v[k].as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default();
    (list("image_mean"), list("image_std"))
}

/// Options of a push.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    /// Create the repo private.
    pub private: bool,
    /// Branch to commit to (default: main).
    pub revision: Option<String>,
    /// Commit message.
    pub message: Option<String>,
}

/// Creates `repo` if missing and uploads the exported model in `model_dir`
/// with a generated README.md, as one commit (all files or none).
pub fn push(
    model_dir: &Path,
    repo: &str,
    opts: &PushOptions,
    progress: Option<crate::hub::Progress>,
) -> Result<PushReport, ShareError> {
    push_on(&HubSettings::default(), model_dir, repo, opts, progress)
}

/// [`push`] to the Hub `hub` names, with its token when it has one.
pub fn push_on(
    hub: &HubSettings,
    model_dir: &Path,
    repo: &str,
    opts: &PushOptions,
    progress: Option<crate::hub::Progress>,
) -> Result<PushReport, ShareError> {
    let (owner, name) = match repo.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => (o, n),
        _ => return Err(ShareError::BadRepoId(repo.into())),
    };
    for f in MODEL_FILES {
        if !model_dir.join(f).is_file() {
            return Err(ShareError::NotAModel {
                path: model_dir.into(),
                reason: format!("no {f} (push a model folder in the transformers layout, e.g. RUN/best)"),
            });
        }
    }
    let card = model_card(model_dir, repo)?;
    let token = token_for(hub).ok_or(ShareError::NotLoggedIn)?;
    let client = client(&token, hub)?;
    let url = client
        .create_repository()
        .repo_id(repo)
        .repo_type(hf_hub::RepoTypeModel)
        .private(opts.private)
        .exist_ok(true)
        .send()
        .map_err(|e| classify(e, &format!("create the repo {repo}"), hub))?
        .url;
    let mut ops: Vec<CommitOperation> = MODEL_FILES
        .iter()
        .map(|f| CommitOperation::Add { path_in_repo: f.to_string(), source: AddSource::file(model_dir.join(f)) })
        .collect();
    ops.push(CommitOperation::Add { path_in_repo: "README.md".into(), source: AddSource::bytes(card.into_bytes()) });
    let message = opts.message.clone().unwrap_or_else(|| "Upload video classifier (vidi)".into());
    let commit = client
        .model(owner, name)
        .create_commit()
        .operations(ops)
        .commit_message(message)
        .maybe_revision(opts.revision.clone())
        .maybe_progress(progress)
        .send()
        .map_err(|e| match classify(e, &format!("upload to {repo}"), hub) {
            // The repo exists by now; the commit is all or nothing, so nothing was uploaded.
            ShareError::Hub { what, reason } => ShareError::Hub {
                what,
                reason: format!("{reason} (the repo exists; no file was uploaded — run the push again)"),
            },
            other => other,
        })?;
    let mut files: Vec<String> = MODEL_FILES.iter().map(|s| s.to_string()).collect();
    files.push("README.md".into());
    Ok(PushReport { repo: repo.into(), url, files, commit: commit.commit_oid })
}
