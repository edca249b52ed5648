//! The Hugging Face Hub: downloads into its cache (`fetch.rs`: timeouts,
//! retries, resumption, checks), repo listings (hf-hub), and safe extraction
//! of downloaded archives. The only module that talks to the network.
//!
//! `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE` and `HF_TOKEN` are honoured, so a
//! mirror, an offline cache or a local test server work without flags;
//! `VIDI_TIMEOUT` sets the limit on silence (seconds).

mod fetch;

use std::cell::Cell;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hf_hub::HFClientSync;

pub use fetch::{DownloadOptions, TRIES};
use fetch::{Fetcher, RepoKind};

/// The default limit on silence, in seconds: a try of a download that hears
/// nothing for this long is dropped (and tried again, [`TRIES`] times in all).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// The longest limit on silence accepted, in seconds (a day).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Seconds as a limit on silence, from `--timeout` or `VIDI_TIMEOUT`: a
/// number above 0 and at most a day.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s <= MAX_TIMEOUT_SECS => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("'{text}' is not a number of seconds above 0 and at most {MAX_TIMEOUT_SECS}")),
    }
}

/// The limit on silence `VIDI_TIMEOUT` sets, else the default.
pub fn env_timeout() -> Result<Duration, HubError> {
    match std::env::var("VIDI_TIMEOUT") {
        Ok(v) if !v.trim().is_empty() => {
            parse_timeout(&v).map_err(|e| HubError::BadTimeout(format!("VIDI_TIMEOUT: {e}")))
        }
        _ => Ok(Duration::from_secs(DEFAULT_TIMEOUT_SECS)),
    }
}

/// A transfer's progress handler, as [`download_dataset_file`],
/// [`resolve_model`] and the share module's push take it; made by [`progress`].
pub type Progress = hf_hub::progress::Progress;

/// Where a download or upload stands: bytes done and bytes known so far,
/// summed over every file of the operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes moved.
    pub done: u64,
    /// Bytes known in all (grows as each file of the operation starts).
    pub total: u64,
    /// An upload's bytes are all sent and the commit is being made.
    pub committing: bool,
}

/// A [`Progress`] handler that calls `on` with the whole operation's
/// [`Transfer`] after each of hf-hub's events. Both front ends use it: the
/// CLI's byte bar and the app's download progress.
pub fn progress(on: impl Fn(Transfer) + Send + Sync + 'static) -> Progress {
    Progress::new(TransferCounter { files: Default::default(), on: Box::new(on) })
}

/// Sums hf-hub's per-file progress over one operation.
struct TransferCounter {
    /// Done and total of the finished files, then of the file in flight.
    files: std::sync::Mutex<[u64; 4]>,
    on: Box<dyn Fn(Transfer) + Send + Sync>,
}

impl hf_hub::progress::ProgressHandler for TransferCounter {
    fn on_progress(&self, event: &hf_hub::progress::ProgressEvent) {
        use hf_hub::progress::{DownloadEvent, ProgressEvent, UploadEvent};
        let Ok(mut s) = self.files.lock() else { return };
        let mut committing = false;
        match event {
            ProgressEvent::Download(DownloadEvent::Start { total_bytes, .. })
            | ProgressEvent::Upload(UploadEvent::Start { total_bytes, .. }) => {
                *s = [s[0] + s[2], s[1] + s[3], 0, *total_bytes];
            }
            ProgressEvent::Download(DownloadEvent::Progress { files }) => {
                s[2] = files.iter().map(|f| f.bytes_completed).sum();
            }
            ProgressEvent::Download(DownloadEvent::AggregateProgress { bytes_completed, .. })
            | ProgressEvent::Upload(UploadEvent::Progress { bytes_completed, .. }) => s[2] = *bytes_completed,
            ProgressEvent::Upload(UploadEvent::Committing) => committing = true,
            _ => return,
        }
        let t = Transfer { done: s[0] + s[2], total: s[1] + s[3], committing };
        drop(s);
        (self.on)(t);
    }
}

/// The dataset repo of the reference workflow.
pub const REFERENCE_DATASET: &str = "sayakpaul/ucf101-subset";
/// Its archive.
pub const REFERENCE_DATASET_FILE: &str = "UCF101_subset.tar.gz";

/// Something went wrong talking to the Hub or unpacking what came from it.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Neither a folder nor a Hub model id.
    #[error("'{0}' is neither a model folder nor a Hub model id (owner/name)")]
    NotAModel(String),
    /// A repo id that is not `owner/name`.
    #[error("'{0}' is not a Hub repo id (expected owner/name)")]
    BadRepoId(String),
    /// A path to a model folder that does not exist (never looked up on the Hub).
    #[error("{0}: no such model folder")]
    NoSuchFolder(String),
    /// The Hub client failed (network, not found, auth).
    #[error("{what}: {source}")]
    Client {
        /// What was being fetched.
        what: String,
        /// hf-hub's error.
        #[source]
        source: hf_hub::HFError,
    },
    /// Every try of a request heard nothing for the whole limit.
    #[error("{what}: timed out: the server was silent for {secs} on each of {tries} tries; wait longer with --timeout SECONDS (or VIDI_TIMEOUT){kept}")]
    Timeout {
        /// What was being fetched.
        what: String,
        /// The limit on silence, as text ("30 s").
        secs: String,
        /// Tries made.
        tries: u32,
        /// What was kept for the next run to resume, as text ("" or "; ...").
        kept: String,
    },
    /// The network failed, or the server answered with an error.
    #[error("{what}: {reason}")]
    Network {
        /// What was being fetched.
        what: String,
        /// What happened.
        reason: String,
    },
    /// The Hub has no such repo, revision or file.
    #[error("{what}: {detail}")]
    NotFound {
        /// What was being fetched.
        what: String,
        /// Which of them is missing.
        detail: String,
    },
    /// The Hub refused access (401, 403).
    #[error("{what}: the Hub refused access ({status}): the repository is private or gated; log in (vidi login, or HF_TOKEN) with an account that may read it")]
    Denied {
        /// What was being fetched.
        what: String,
        /// The HTTP status.
        status: u16,
    },
    /// What came is not the file: a web page, or a size other than the Hub's.
    #[error("{what}: {why}; nothing was cached")]
    NotTheFile {
        /// What was being fetched.
        what: String,
        /// What was wrong with it.
        why: String,
    },
    /// The bytes that came do not have the sha256 the Hub names.
    #[error("{what}: checksum mismatch: the Hub says sha256 {expected}, the bytes received have {actual}; the download was discarded")]
    Checksum {
        /// What was being fetched.
        what: String,
        /// The Hub's sha256.
        expected: String,
        /// The received bytes' sha256.
        actual: String,
    },
    /// Another process downloads the same file into the cache.
    #[error("{what}: another vidi is downloading this file ({path} is locked); wait for it to finish")]
    Busy {
        /// What was being fetched.
        what: String,
        /// The partial file it holds.
        path: PathBuf,
    },
    /// A file name, revision or blob name that would leave the cache folder.
    #[error("{what}: refusing the name '{name}': not a plain relative path")]
    BadName {
        /// What was being fetched.
        what: String,
        /// The name.
        name: String,
    },
    /// Offline on purpose, and the cache does not have the file.
    #[error("{what}: not in the cache")]
    NotCached {
        /// What was looked for.
        what: String,
    },
    /// The network failed earlier in this operation, and the cache does not have the file.
    #[error("{what}: not in the cache, and the Hub cannot be reached ({why})")]
    Offline {
        /// What was being fetched.
        what: String,
        /// The earlier failure.
        why: String,
    },
    /// The download or extraction was cancelled; its partial files are removed.
    #[error("cancelled; its partial files were removed")]
    Cancelled,
    /// A limit on silence that is not a positive number of seconds.
    #[error("{0}")]
    BadTimeout(String),
    /// An archive that expands far past its own size.
    #[error("{archive}: refusing to extract: it expands past {} ({ratio} times its {}, and at least {}), as an archive bomb does (nothing was extracted)", size_text(.limit), size_text(.size), size_text(.floor))]
    TooLarge {
        /// The archive.
        archive: PathBuf,
        /// The limit it passed, in bytes.
        limit: u64,
        /// [`ExpansionLimit::ratio`].
        ratio: u64,
        /// The archive's size, in bytes.
        size: u64,
        /// [`ExpansionLimit::floor_bytes`].
        floor: u64,
    },
    /// An archive entry would land outside the target folder.
    #[error("{archive}: refusing entry '{entry}': it points outside the target folder (nothing was extracted)")]
    UnsafeEntry {
        /// The archive.
        archive: PathBuf,
        /// The entry's path.
        entry: String,
    },
    /// Extraction would overwrite something that exists.
    #[error("{path} already exists; remove it or choose another --out (nothing was extracted)")]
    Exists {
        /// The path in the way.
        path: PathBuf,
    },
    /// A damaged archive or a file system error.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl HubError {
    /// Whether the repo simply lacks the file (or, offline, the cache does).
    fn is_absent(&self) -> bool {
        matches!(self, HubError::NotFound { .. } | HubError::NotCached { .. })
    }
}

/// Whether `spec`, which names no folder, is a path all the same, never a Hub
/// id: absolute, starting with `.` or `~`, or under a folder that exists here
/// (`vidi-run/best` when `vidi-run/` is a folder).
fn is_a_path(spec: &str) -> bool {
    let first = spec.split('/').next().unwrap_or_default();
    spec.starts_with(['/', '.', '~', '\\']) || (spec.contains('/') && Path::new(first).is_dir())
}

/// A model given as `owner/name@revision` (a branch, a tag, a commit or a
/// pull request's `refs/pr/N`; Hub ids cannot hold `@`): the id and the revision.
/// Without `@`, the spec as it is and no revision.
pub fn split_revision(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('@') {
        Some((id, rev)) if !id.is_empty() && !rev.is_empty() && !id.starts_with(['/', '.', '~', '\\']) => {
            (id, Some(rev))
        }
        _ => (spec, None),
    }
}

fn split_repo_id(id: &str) -> Result<(&str, &str), HubError> {
    match id.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok((o, n)),
        _ => Err(HubError::BadRepoId(id.into())),
    }
}

/// Downloads one file of a dataset repo into the hf-hub cache (or finds it
/// there when offline) and returns its path in the cache.
pub fn download_dataset_file(
    repo_id: &str,
    filename: &str,
    revision: Option<&str>,
    progress: Option<Progress>,
) -> Result<PathBuf, HubError> {
    download_dataset_file_with(repo_id, filename, revision, progress, &HubSettings::default())
}

/// [`download_dataset_file`] against the Hub and cache `hub` names.
pub fn download_dataset_file_with(
    repo_id: &str,
    filename: &str,
    revision: Option<&str>,
    progress: Option<Progress>,
    hub: &HubSettings,
) -> Result<PathBuf, HubError> {
    let opts = DownloadOptions { progress, ..Default::default() };
    download_dataset_file_opts(repo_id, filename, revision, hub, &opts)
}

/// [`download_dataset_file_with`] with a cancel flag and a limit on silence.
pub fn download_dataset_file_opts(
    repo_id: &str,
    filename: &str,
    revision: Option<&str>,
    hub: &HubSettings,
    opts: &DownloadOptions,
) -> Result<PathBuf, HubError> {
    split_repo_id(repo_id)?;
    let what = format!("downloading {filename} from dataset {repo_id}");
    Fetcher::new(hub, opts)?.file(RepoKind::Dataset, repo_id, filename, revision, &what)
}

/// How far an archive may expand before extraction refuses it: past
/// `ratio` times its own size and past `floor_bytes` both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpansionLimit {
    /// Times the archive's size.
    pub ratio: u64,
    /// Bytes any archive may expand to (a small archive of text compresses well).
    pub floor_bytes: u64,
}

/// [`ExpansionLimit`]'s default ratio.
pub const MAX_EXPANSION_RATIO: u64 = 100;
/// [`ExpansionLimit`]'s default floor: 1 GiB.
pub const EXPANSION_FLOOR_BYTES: u64 = 1 << 30;

impl Default for ExpansionLimit {
    fn default() -> Self {
        ExpansionLimit { ratio: MAX_EXPANSION_RATIO, floor_bytes: EXPANSION_FLOOR_BYTES }
    }
}

impl ExpansionLimit {
    /// The most bytes an archive of `size` bytes may expand to.
    pub fn bytes_for(&self, size: u64) -> u64 {
        size.saturating_mul(self.ratio).max(self.floor_bytes)
    }
}

/// Extracts a `.tar.gz` (or plain `.tar`) archive into `out`, within the
/// default [`ExpansionLimit`].
///
/// Every entry is checked before anything is written: absolute paths, `..`
/// components and links pointing outside `out` are refused, and so is an
/// archive whose entries add up past the limit. Extraction goes to a staging
/// folder inside `out` first and is moved into place only when complete, and
/// never over an existing file. Returns the top-level paths created.
pub fn extract_archive(
    archive: &Path,
    out: &Path,
    on_bytes: &mut dyn FnMut(u64, u64),
) -> Result<Vec<PathBuf>, HubError> {
    extract_archive_with(archive, out, ExpansionLimit::default(), None, on_bytes)
}

/// Why a read of an archive was stopped.
#[derive(Clone, Copy)]
enum Stopped {
    TooLarge,
    Cancelled,
}

/// [`extract_archive`] within `limit`, stopping (and removing what it wrote)
/// when `cancel` is set.
pub fn extract_archive_with(
    archive: &Path,
    out: &Path,
    limit: ExpansionLimit,
    cancel: Option<&AtomicBool>,
    on_bytes: &mut dyn FnMut(u64, u64),
) -> Result<Vec<PathBuf>, HubError> {
    let total = std::fs::metadata(archive).map_err(|source| HubError::Io { path: archive.into(), source })?.len();
    let max = limit.bytes_for(total);
    // The tar stream holds headers and padding besides the entries' bytes.
    let stream_max = max.saturating_add(max / 8);
    let too_large = || HubError::TooLarge {
        archive: archive.into(),
        limit: max,
        ratio: limit.ratio,
        size: total,
        floor: limit.floor_bytes,
    };
    // The readers below say here why they stopped: the error they return
    // comes back wrapped by the tar reader.
    let stopped: Rc<Cell<Option<Stopped>>> = Rc::default();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        let stopped = stopped.clone();
        move |source| match stopped.get() {
            Some(Stopped::TooLarge) => too_large(),
            Some(Stopped::Cancelled) => HubError::Cancelled,
            None => HubError::Io { path, source },
        }
    };
    // Pass 1: validate every entry, and add up what they expand to.
    let tops = {
        let file = std::fs::File::open(archive).map_err(io(archive))?;
        let mut ar = tar::Archive::new(Expansion::new(maybe_gz(file, archive)?, stream_max, cancel, &stopped));
        let mut tops = std::collections::BTreeSet::new();
        let mut expanded = 0u64;
        for entry in ar.entries().map_err(io(archive))? {
            let entry = entry.map_err(io(archive))?;
            let header = entry.header();
            // A sparse file's holes take no room in the archive.
            let real = header.as_gnu().filter(|_| header.entry_type().is_gnu_sparse()).and_then(|g| g.real_size().ok());
            expanded = expanded.saturating_add(entry.size().max(real.unwrap_or(0)));
            if expanded > max {
                return Err(too_large());
            }
            let path = entry.path().map_err(io(archive))?.into_owned();
            let shown = path.display().to_string();
            let unsafe_entry = || HubError::UnsafeEntry { archive: archive.into(), entry: shown.clone() };
            if path.components().any(|c| c == Component::ParentDir) {
                return Err(unsafe_entry());
            }
            let rel = safe_relative(&path).ok_or_else(unsafe_entry)?;
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry.link_name().map_err(io(archive))?.ok_or_else(unsafe_entry)?;
                let base = if kind.is_hard_link() {
                    PathBuf::new()
                } else {
                    rel.parent().map(Path::to_path_buf).unwrap_or_default()
                };
                if safe_relative(&base.join(&target)).is_none() {
                    return Err(unsafe_entry());
                }
            }
            if let Some(Component::Normal(first)) = rel.components().next() {
                tops.insert(PathBuf::from(first));
            }
        }
        tops
    };
    for t in &tops {
        if out.join(t).exists() {
            return Err(HubError::Exists { path: out.join(t) });
        }
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let staging = out.join(format!(".vidi-extract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let result = (|| {
        let file = std::fs::File::open(archive).map_err(io(archive))?;
        let counted = CountingReader { inner: file, read: 0, total, on_bytes };
        let mut ar = tar::Archive::new(Expansion::new(maybe_gz(counted, archive)?, stream_max, cancel, &stopped));
        ar.set_preserve_permissions(false);
        for entry in ar.entries().map_err(io(archive))? {
            let mut entry = entry.map_err(io(archive))?;
            // unpack_in refuses paths that escape `staging` on its own too.
            entry.unpack_in(&staging).map_err(io(&staging))?;
        }
        let mut created = Vec::new();
        for t in &tops {
            let dst = out.join(t);
            std::fs::rename(staging.join(t), &dst).map_err(io(&dst))?;
            created.push(dst);
        }
        Ok(created)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Bytes for people: "1.0 GiB", "12.3 MiB", "512 bytes".
fn size_text(bytes: &u64) -> String {
    let b = *bytes as f64;
    match *bytes {
        n if n >= 1 << 30 => format!("{:.1} GiB", b / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", b / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", b / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// `path` as a relative path with no `..` escaping its root; `None` if unsafe.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Reads an archive's expanded stream, stopping past `max` bytes (which
/// bounds even the headers the tar reader keeps in memory) or once cancelled.
struct Expansion<'a, R> {
    inner: R,
    read: u64,
    max: u64,
    cancel: Option<&'a AtomicBool>,
    stopped: Rc<Cell<Option<Stopped>>>,
}

impl<'a, R> Expansion<'a, R> {
    fn new(inner: R, max: u64, cancel: Option<&'a AtomicBool>, stopped: &Rc<Cell<Option<Stopped>>>) -> Self {
        Expansion { inner, read: 0, max, cancel, stopped: stopped.clone() }
    }
}

impl<R: Read> Read for Expansion<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let why = if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            Some(Stopped::Cancelled)
        } else if self.read > self.max {
            Some(Stopped::TooLarge)
        } else {
            None
        };
        if let Some(why) = why {
            self.stopped.set(Some(why));
            return Err(std::io::Error::other("extraction stopped"));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

struct CountingReader<'a, R> {
    inner: R,
    read: u64,
    total: u64,
    on_bytes: &'a mut dyn FnMut(u64, u64),
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.on_bytes)(self.read, self.total);
        Ok(n)
    }
}

fn is_gzip(path: &Path) -> Result<bool, HubError> {
    let mut magic = [0u8; 2];
    let mut f = std::fs::File::open(path).map_err(|source| HubError::Io { path: path.into(), source })?;
    Ok(f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b])
}

fn maybe_gz<'a, R: Read + 'a>(r: R, path: &Path) -> Result<Box<dyn Read + 'a>, HubError> {
    Ok(if is_gzip(path)? { Box::new(flate2::read::GzDecoder::new(r)) } else { Box::new(r) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(safe_relative(Path::new("a/./b")), Some(PathBuf::from("a/b")));
        assert_eq!(safe_relative(Path::new("a/../b")), Some(PathBuf::from("b")));
        assert_eq!(safe_relative(Path::new("../b")), None);
        assert_eq!(safe_relative(Path::new("/etc/passwd")), None);
        assert!(split_repo_id("a/b").is_ok());
        assert!(split_repo_id("ab").is_err());
    }
}

/// The files of a model repo vidi needs, in the order tried for weights: the
/// model's config, then the processor's (transformers 4's image processor file,
/// and the video processor file transformers 5 writes for V-JEPA 2 and VideoPrism).
const MODEL_CONFIG_FILES: [&str; 3] = ["config.json", "preprocessor_config.json", "video_preprocessor_config.json"];

/// The reference checkpoints, and what each is.
pub const REFERENCE_MODELS: [(&str, &str); 6] = [
    ("MCG-NJU/videomae-base-finetuned-kinetics", "VideoMAE-base, Kinetics-400 labels"),
    ("facebook/timesformer-base-finetuned-k400", "TimeSformer-base, Kinetics-400 labels"),
    ("google/vivit-b-16x2-kinetics400", "ViViT-B/16x2, Kinetics-400 labels"),
    ("MCG-NJU/videomae-base", "VideoMAE-base pre-trained: the guide's starting point for fine-tuning"),
    ("facebook/vjepa2-vitl-fpc16-256-ssv2", "V-JEPA 2 ViT-L, 16 x 256 x 256, Something-Something v2 labels"),
    (
        "google/videoprism-base-f16r288@refs/pr/4",
        "VideoPrism-base backbone, 16 x 288 x 288, for fine-tuning (its transformers weights are on the repo's pull request 4)",
    ),
];

/// Where `vidi login` saves the token: `HF_TOKEN_PATH`, else `$HF_HOME/token`
/// (where the Hub's own tools look).
pub fn default_token_file() -> PathBuf {
    match std::env::var_os("HF_TOKEN_PATH").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => hf_hub::hf_home().join("token"),
    }
}

/// Where the Hub is and where its cache lies. `None` fields take hf-hub's own
/// defaults (`HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`).
#[derive(Clone, Debug, Default)]
pub struct HubSettings {
    /// The Hub's base URL.
    pub endpoint: Option<String>,
    /// The hf-hub cache folder.
    pub cache_dir: Option<PathBuf>,
    /// The token for pushing (else `HF_TOKEN`, else the one `vidi login` saved).
    pub token: Option<String>,
    /// Where a login saves the token and where it is read from (else
    /// `HF_TOKEN_PATH`, else `$HF_HOME/token`).
    pub token_file: Option<PathBuf>,
}

impl HubSettings {
    /// The Hub's base URL: the one set here, else `HF_ENDPOINT`, else huggingface.co.
    pub fn endpoint_url(&self) -> String {
        self.endpoint
            .clone()
            .or_else(|| std::env::var("HF_ENDPOINT").ok())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "https://huggingface.co".into())
    }

    /// Whether a TCP connection to the Hub opens within a few seconds: an offline
    /// machine learns it at once instead of after the HTTP client's retries.
    /// (Skipped behind a proxy, which the HTTP client knows how to use.)
    pub fn reachable(&self) -> Result<(), String> {
        use std::net::ToSocketAddrs;
        let proxied = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        if proxied {
            return Ok(());
        }
        let url = self.endpoint_url();
        let (scheme, rest) = url.split_once("://").unwrap_or(("https", url.as_str()));
        let authority = rest.split('/').next().unwrap_or_default();
        let addr = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_string()
        } else {
            format!("{authority}:{}", if scheme == "http" { 80 } else { 443 })
        };
        let addrs: Vec<_> = addr.to_socket_addrs().map_err(|e| format!("cannot look up {authority}: {e}"))?.collect();
        let mut last = format!("no address for {authority}");
        for a in addrs {
            match std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(3)) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("cannot connect to {authority}: {e}"),
            }
        }
        Err(last)
    }

    /// The token for reading private repos: the one set here, else `HF_TOKEN`
    /// or the saved one (unless `HF_HUB_DISABLE_IMPLICIT_TOKEN` is set).
    pub fn token(&self) -> Option<String> {
        if self.token.is_some() {
            return self.token.clone();
        }
        let set = |v: &str| std::env::var(v).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        if set("HF_HUB_DISABLE_IMPLICIT_TOKEN").is_some() {
            return None;
        }
        let file = self.token_file.clone().unwrap_or_else(default_token_file);
        set("HF_TOKEN")
            .or_else(|| std::fs::read_to_string(file).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
    }

    /// An hf-hub client (for listings) whose requests give up after the limit on silence.
    fn client_with(&self, what: &str, retries: Option<usize>) -> Result<HFClientSync, HubError> {
        let silence = env_timeout()?;
        let http = hf_hub::HFClient::builder();
        let reqwest = reqwest::Client::builder()
            .user_agent(format!("vidi/{}", env!("CARGO_PKG_VERSION")))
            .connect_timeout(silence)
            .read_timeout(silence)
            .build()
            .map_err(|e| HubError::Network { what: what.to_string(), reason: e.to_string() })?;
        let mut b = http.client(reqwest);
        if let Some(n) = retries {
            b = b.retry_max_attempts(n);
        }
        if let Some(e) = &self.endpoint {
            b = b.endpoint(e.clone());
        }
        if let Some(c) = &self.cache_dir {
            b = b.cache_dir(c.clone());
        }
        b.build_sync().map_err(|source| HubError::Client { what: what.to_string(), source })
    }
}

/// What a `--model` value points at, found without downloading anything.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelStatus {
    /// A local folder.
    Local(PathBuf),
    /// A Hub model already in the cache: works offline.
    Cached(PathBuf),
    /// A Hub model not cached yet; the Hub has it, this many bytes to download.
    Downloadable {
        /// Bytes of the files vidi would download.
        bytes: u64,
    },
    /// Not cached and the Hub cannot be asked (no network, or it refused).
    Unreachable(String),
    /// Neither a folder nor a Hub id.
    NotAModel,
    /// A folder that holds no model vidi can load, and why (one line).
    NotUsable(String),
}

/// Looks `spec` up: a folder, the cache, then (one listing request) the Hub.
pub fn model_status(spec: &str, hub: &HubSettings) -> ModelStatus {
    model_statuses(&[spec], hub).pop().unwrap_or(ModelStatus::NotAModel)
}

/// [`model_status`] for several models, asking whether the Hub is reachable once.
pub fn model_statuses(specs: &[&str], hub: &HubSettings) -> Vec<ModelStatus> {
    let mut online: Option<Result<(), String>> = None;
    specs.iter().map(|s| status(s, hub, &mut online)).collect()
}

fn status(spec: &str, hub: &HubSettings, online: &mut Option<Result<(), String>>) -> ModelStatus {
    let spec = spec.trim();
    if Path::new(spec).is_dir() {
        return match crate::model::check_folder(Path::new(spec)) {
            Ok(_) => ModelStatus::Local(PathBuf::from(spec)),
            Err(e) => ModelStatus::NotUsable(e.to_string()),
        };
    }
    let (id, revision) = split_revision(spec);
    if is_a_path(id) {
        return ModelStatus::NotUsable(HubError::NoSuchFolder(spec.to_string()).to_string());
    }
    let Ok((owner, name)) = split_repo_id(id) else { return ModelStatus::NotAModel };
    if let Ok(dir) = resolve(id, revision, true, hub, &DownloadOptions::default()) {
        return ModelStatus::Cached(dir);
    }
    if let Err(e) = online.get_or_insert_with(|| hub.reachable()) {
        return ModelStatus::Unreachable(e.clone());
    }
    let client = match hub.client_with(spec, Some(0)) {
        Ok(c) => c,
        Err(e) => return ModelStatus::Unreachable(e.to_string()),
    };
    match client.model(owner, name).list_tree().maybe_revision(revision.map(str::to_string)).send() {
        Ok(entries) => {
            let sizes: std::collections::BTreeMap<String, u64> = entries
                .into_iter()
                .filter_map(|e| match e {
                    hf_hub::repository::RepoTreeEntry::File { path, size, .. } => Some((path, size)),
                    _ => None,
                })
                .collect();
            let files = download_plan(&sizes.keys().cloned().collect::<Vec<_>>());
            ModelStatus::Downloadable { bytes: files.iter().filter_map(|f| sizes.get(f)).sum() }
        }
        Err(e) => ModelStatus::Unreachable(e.to_string()),
    }
}

/// Which of a repo's top-level files vidi downloads: the configs, then the first
/// weights format present (safetensors, sharded safetensors, pickle).
fn download_plan(files: &[String]) -> Vec<String> {
    let has = |f: &str| files.iter().any(|x| x == f);
    let mut plan: Vec<String> = MODEL_CONFIG_FILES.iter().filter(|f| has(f)).map(|f| f.to_string()).collect();
    if has("model.safetensors") {
        plan.push("model.safetensors".into());
    } else if has("model.safetensors.index.json") {
        plan.push("model.safetensors.index.json".into());
        plan.extend(files.iter().filter(|f| f.starts_with("model-") && f.ends_with(".safetensors")).cloned());
    } else if has("pytorch_model.bin") {
        plan.push("pytorch_model.bin".into());
    }
    plan
}

/// A `--model` argument: an existing local folder, else a Hub model id
/// (`owner/name`) downloaded into the hf-hub cache (or found there offline).
/// Returns the folder holding `config.json` and the weights.
pub fn resolve_model(spec: &str, revision: Option<&str>, progress: Option<Progress>) -> Result<PathBuf, HubError> {
    resolve(spec, revision, false, &HubSettings::default(), &DownloadOptions { progress, ..Default::default() })
}

/// [`resolve_model`] against the Hub and cache `hub` names.
pub fn resolve_model_with(
    spec: &str,
    revision: Option<&str>,
    progress: Option<Progress>,
    hub: &HubSettings,
) -> Result<PathBuf, HubError> {
    resolve(spec, revision, false, hub, &DownloadOptions { progress, ..Default::default() })
}

/// [`resolve_model_with`] with a cancel flag and a limit on silence.
pub fn resolve_model_opts(
    spec: &str,
    revision: Option<&str>,
    hub: &HubSettings,
    opts: &DownloadOptions,
) -> Result<PathBuf, HubError> {
    resolve(spec, revision, false, hub, opts)
}

fn resolve(
    spec: &str,
    revision: Option<&str>,
    local_only: bool,
    hub: &HubSettings,
    opts: &DownloadOptions,
) -> Result<PathBuf, HubError> {
    let local = Path::new(spec);
    if local.is_dir() {
        return Ok(local.to_path_buf());
    }
    // `owner/name@revision`; a revision passed on its own (`--revision`) wins.
    let (spec, at) = split_revision(spec);
    let revision = revision.or(at);
    if is_a_path(spec) {
        return Err(HubError::NoSuchFolder(spec.to_string()));
    }
    split_repo_id(spec).map_err(|_| HubError::NotAModel(spec.to_string()))?;
    let mut fetcher = Fetcher::new(hub, opts)?;
    if local_only {
        fetcher.offline();
    }
    let mut get = |file: &str, what: &str| fetcher.file(RepoKind::Model, spec, file, revision, what);
    // Optional files: only their absence is passed over; a network failure ends it all.
    let optional = |r: Result<PathBuf, HubError>| match r {
        Err(e) if e.is_absent() => Ok(None),
        r => r.map(Some),
    };
    let config = get(MODEL_CONFIG_FILES[0], &format!("downloading config.json of model {spec}"))?;
    let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
    // The processor configs are optional (defaults apply). When the Hub cannot be
    // reached, config.json came from the cache, and a processor file the cache
    // lacks is taken as one the repo lacks, as transformers does offline: a cache
    // made before vidi fetched video_preprocessor_config.json still works.
    for file in &MODEL_CONFIG_FILES[1..] {
        match get(file, &format!("downloading {file} of model {spec}")) {
            Err(HubError::Offline { .. }) => {}
            r => {
                optional(r)?;
            }
        }
    }
    if optional(get("model.safetensors", &format!("downloading model.safetensors of model {spec}")))?.is_some() {
        return Ok(dir);
    }
    let index = "model.safetensors.index.json";
    if let Some(index) = optional(get(index, &format!("downloading {index} of model {spec}")))? {
        let text = std::fs::read_to_string(&index).map_err(|source| HubError::Io { path: index.clone(), source })?;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let shards: std::collections::BTreeSet<String> = v["weight_map"]
            .as_object()
            .map(|m| m.values().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default();
        for s in shards {
            get(&s, &format!("downloading {s} of model {spec}"))?;
        }
        return Ok(dir);
    }
    get("pytorch_model.bin", &format!("downloading the weights of model {spec}"))?;
    Ok(dir)
}
