//! One file of a Hub repo into the Hugging Face cache, laid out as the rest of
//! vidi reads it: `blobs/<etag>`, `snapshots/<commit>/<file>` (a link to the
//! blob) and `refs/<revision>` (the commit).
//!
//! Every wait on the network has a limit on silence ([`DownloadOptions::timeout`]):
//! a try that hears nothing for that long is dropped and tried again after a
//! short pause, [`TRIES`] times in all, so a server that accepts and never
//! answers ends the command with one error. A partial blob
//! (`blobs/<etag>.incomplete`) is resumed with a `Range` request, on the next
//! try or the next run. A blob is kept only once it is what the Hub announced:
//! not a web page, exactly the size of its metadata, and, for an LFS file whose
//! ETag is a sha256, that sha256.

use std::future::Future;
use std::io::{Read, Seek, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::StatusCode;

use super::{HubError, HubSettings, Progress};

/// Tries of one request before a download gives up: the first and two retries.
pub const TRIES: u32 = 3;
/// The pauses before the second and the third try. With the default 30 s
/// limit on silence, a server that never answers is given up on after
/// 3 x 30 + 1 + 2 = 93 s.
const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// How often a wait looks at the cancel flag.
const TICK: Duration = Duration::from_millis(50);
/// The revision when none is given.
const DEFAULT_REVISION: &str = "main";

/// How a download runs: who hears its progress, what stops it, how long it
/// waits on silence.
#[derive(Clone, Default)]
pub struct DownloadOptions<'a> {
    /// Told the bytes as they arrive.
    pub progress: Option<Progress>,
    /// Set, the download stops at once and removes its partial file.
    pub cancel: Option<&'a AtomicBool>,
    /// The longest silence (connecting, waiting for an answer, between two
    /// pieces of a body) before a try is dropped: this, else `VIDI_TIMEOUT`
    /// (seconds), else [`super::DEFAULT_TIMEOUT_SECS`].
    pub timeout: Option<Duration>,
}

/// A repo's kind, as the URL and the cache folder name it.
#[derive(Clone, Copy, Debug)]
pub enum RepoKind {
    /// A model repo.
    Model,
    /// A dataset repo.
    Dataset,
}

impl RepoKind {
    fn url_prefix(self) -> &'static str {
        match self {
            RepoKind::Model => "",
            RepoKind::Dataset => "datasets/",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        }
    }
}

/// Why one try failed.
enum Failure {
    /// Worth another try.
    Again(Reason),
    /// The end of the download.
    Fatal(HubError),
    /// The end of the download, for want of the network (a refused connection).
    Unreachable(String),
}

/// What went wrong with a try worth repeating.
enum Reason {
    /// Nothing came for the whole limit.
    Silent,
    /// The connection broke, or the server said it is busy.
    Network(String),
    /// The body ended before the size the Hub announced.
    Short { got: u64, want: u64 },
}

/// What the Hub says of a file before it is fetched.
struct Meta {
    /// The blob's name: the LFS sha256, or the git object id.
    etag: String,
    /// The commit the revision points at.
    commit: String,
    /// The file's size, when the Hub says it.
    size: Option<u64>,
}

/// Downloads files of Hub repos into the cache, one after the other, sharing
/// one HTTP client. After a try fails for want of the network, the files that
/// follow come from the cache alone.
pub struct Fetcher<'a> {
    runtime: tokio::runtime::Runtime,
    /// Follows redirects (to the file's storage).
    http: reqwest::Client,
    /// Follows none: the Hub's redirect of an LFS file carries its metadata.
    meta_http: reqwest::Client,
    endpoint: String,
    cache: PathBuf,
    token: Option<String>,
    silence: Duration,
    progress: Option<Progress>,
    cancel: Option<&'a AtomicBool>,
    /// Only the cache is used: asked for, or the network failed (and why).
    offline: Option<Option<String>>,
}

impl<'a> Fetcher<'a> {
    /// A fetcher for the Hub and cache `hub` names.
    pub fn new(hub: &HubSettings, opts: &DownloadOptions<'a>) -> Result<Self, HubError> {
        let silence = match opts.timeout {
            Some(t) => t,
            None => super::env_timeout()?,
        };
        let fail =
            |e: reqwest::Error| HubError::Network { what: "starting the HTTP client".into(), reason: e.to_string() };
        let agent = format!("vidi/{}", env!("CARGO_PKG_VERSION"));
        let http = reqwest::Client::builder().user_agent(agent.clone()).build().map_err(fail)?;
        let meta_http = reqwest::Client::builder()
            .user_agent(agent)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(fail)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| HubError::Io { path: PathBuf::from("(the download's runtime)"), source })?;
        Ok(Fetcher {
            runtime,
            http,
            meta_http,
            endpoint: hub.endpoint_url().trim_end_matches('/').to_string(),
            cache: hub.cache_dir.clone().unwrap_or_else(hf_hub::resolve_cache_dir),
            token: hub.token(),
            silence,
            progress: opts.progress.clone(),
            cancel: opts.cancel,
            offline: None,
        })
    }

    /// From now on, files come from the cache alone.
    pub fn offline(&mut self) {
        self.offline.get_or_insert(None);
    }

    /// `filename` of the repo `repo_id` at `revision` (default `main`): in the
    /// cache when the Hub points at what is there, else downloaded into it.
    /// `what` starts every error message. A file the repo does not have is
    /// [`HubError::NotFound`] (or [`HubError::NotCached`] offline).
    pub fn file(
        &mut self,
        kind: RepoKind,
        repo_id: &str,
        filename: &str,
        revision: Option<&str>,
        what: &str,
    ) -> Result<PathBuf, HubError> {
        let rev = revision.unwrap_or(DEFAULT_REVISION);
        for name in [filename, rev] {
            plain_relative(name).ok_or_else(|| HubError::BadName { what: what.into(), name: name.into() })?;
        }
        let folder = self.cache.join(format!("{}--{}", kind.plural(), repo_id.replace('/', "--")));
        if is_commit(rev) {
            if let Some(snap) = cached(&folder, rev, filename) {
                return Ok(snap);
            }
        }
        if let Some(why) = &self.offline {
            return cached(&folder, rev, filename).ok_or_else(|| match why {
                None => HubError::NotCached { what: what.into() },
                Some(why) => HubError::Offline { what: what.into(), why: why.clone() },
            });
        }
        let url = self.url(kind, repo_id, rev, filename, what)?;
        let meta = match self.runtime.block_on(self.meta(&url, filename, what)) {
            Ok(m) => m,
            Err(e @ (HubError::Timeout { .. } | HubError::Network { .. })) => {
                // Offline (or the Hub is down): what the cache holds still works.
                self.offline = Some(Some(e.to_string()));
                return cached(&folder, rev, filename).ok_or(e);
            }
            Err(e) => return Err(e),
        };
        for name in [&meta.etag, &meta.commit] {
            plain_name(name).ok_or_else(|| HubError::BadName { what: what.into(), name: name.clone() })?;
        }
        let blob = folder.join("blobs").join(&meta.etag);
        let have = std::fs::metadata(&blob).ok().map(|m| m.len());
        if have.is_none() || meta.size.is_some_and(|s| have != Some(s)) {
            if have.is_some() {
                // Not the size the Hub says: not the file (a truncated blob of an older client).
                std::fs::remove_file(&blob).map_err(|source| HubError::Io { path: blob.clone(), source })?;
            }
            self.download(&blob, &url, &meta, filename, what)?;
        } else if let Some(p) = &self.progress {
            let size = have.unwrap_or(0);
            p.on_progress(&start_event(size));
            p.on_progress(&progress_event(filename, size, size));
        }
        finalize(&folder, rev, &meta.commit, filename, &meta.etag)
    }

    fn url(
        &self,
        kind: RepoKind,
        repo_id: &str,
        rev: &str,
        filename: &str,
        what: &str,
    ) -> Result<reqwest::Url, HubError> {
        let base = format!("{}/{}{repo_id}/resolve", self.endpoint, kind.url_prefix());
        let mut url = reqwest::Url::parse(&base)
            .map_err(|e| HubError::Network { what: what.into(), reason: format!("the Hub address {base}: {e}") })?;
        url.path_segments_mut()
            .map_err(|()| HubError::Network {
                what: what.into(),
                reason: format!("the Hub address {base} is not a URL"),
            })?
            .push(rev)
            .extend(filename.split('/'));
        Ok(url)
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = self.token.as_ref().and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok()) {
            h.insert(header::AUTHORIZATION, v);
        }
        h
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// `fut`, unless it stays silent for the limit or the download is cancelled.
    async fn within<T>(&self, fut: impl Future<Output = reqwest::Result<T>>) -> Result<T, Failure> {
        let mut fut = std::pin::pin!(fut);
        let start = Instant::now();
        loop {
            if self.cancelled() {
                return Err(Failure::Fatal(HubError::Cancelled));
            }
            match tokio::time::timeout(TICK, fut.as_mut()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => return Err(network_failure(&e)),
                Err(_) if start.elapsed() >= self.silence => return Err(Failure::Again(Reason::Silent)),
                Err(_) => {}
            }
        }
    }

    /// Waits `d`, unless the download is cancelled.
    async fn pause(&self, d: Duration) -> Result<(), HubError> {
        let start = Instant::now();
        while start.elapsed() < d {
            if self.cancelled() {
                return Err(HubError::Cancelled);
            }
            tokio::time::sleep(TICK.min(d)).await;
        }
        Ok(())
    }

    /// The error of a download that ran out of tries.
    fn gave_up(&self, what: &str, reason: Reason, kept: u64) -> HubError {
        let what = what.to_string();
        let kept = if kept > 0 {
            format!("; the {kept} bytes received are kept and the next run resumes from them")
        } else {
            String::new()
        };
        match reason {
            Reason::Silent => HubError::Timeout { what, secs: secs_text(self.silence), tries: TRIES, kept },
            Reason::Network(reason) => HubError::Network { what, reason: format!("{reason} ({TRIES} tries){kept}") },
            Reason::Short { got, want } => HubError::Network {
                what,
                reason: format!("the connection ended after {got} of {want} bytes ({TRIES} tries){kept}"),
            },
        }
    }

    /// What the Hub says of the file at `url`, with retries.
    async fn meta(&self, url: &reqwest::Url, filename: &str, what: &str) -> Result<Meta, HubError> {
        let mut tries = 1;
        loop {
            match self.meta_once(url, filename, what).await {
                Ok(m) => return Ok(m),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Unreachable(reason)) => return Err(HubError::Network { what: what.into(), reason }),
                Err(Failure::Again(r)) if tries >= TRIES => return Err(self.gave_up(what, r, 0)),
                Err(Failure::Again(_)) => self.pause(BACKOFF[tries as usize - 1]).await?,
            }
            tries += 1;
        }
    }

    async fn meta_once(&self, url: &reqwest::Url, filename: &str, what: &str) -> Result<Meta, Failure> {
        let mut url = url.clone();
        for _ in 0..10 {
            let resp = self.within(self.meta_http.head(url.clone()).headers(self.headers()).send()).await?;
            let status = resp.status();
            let h = resp.headers();
            if status.is_redirection() {
                let location = h.get(header::LOCATION).and_then(|l| l.to_str().ok()).unwrap_or_default();
                if !location.is_empty() && !location.contains("://") && !location.starts_with("//") {
                    // A renamed repo: the Hub points at its new name.
                    if let Ok(next) = url.join(location) {
                        url = next;
                        continue;
                    }
                }
                // Else the Hub's redirect to an LFS file's storage, with its metadata.
            } else if !status.is_success() {
                return Err(status_failure(status, h, what));
            } else if is_web_page(h, filename) {
                return Err(Failure::Fatal(web_page(what)));
            }
            let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            let etag = text("x-linked-etag").or_else(|| text("etag")).map(|e| {
                let e = e.strip_prefix("W/").unwrap_or(&e);
                e.trim_matches('"').to_string()
            });
            let (Some(etag), Some(commit)) = (etag.filter(|e| !e.is_empty()), text("x-repo-commit")) else {
                return Err(Failure::Fatal(HubError::NotTheFile {
                    what: what.into(),
                    why: format!(
                        "{} answered without the Hub's ETag and X-Repo-Commit headers: is HF_ENDPOINT a Hub?",
                        self.endpoint
                    ),
                }));
            };
            // A redirect's own Content-Length is the redirect's, not the file's.
            let length = if status.is_success() { text("content-length") } else { None };
            let size = text("x-linked-size").or(length).and_then(|s| s.trim().parse().ok());
            return Ok(Meta { etag, commit, size });
        }
        Err(Failure::Fatal(HubError::Network { what: what.into(), reason: "too many redirects".into() }))
    }

    /// Downloads `url` into `blob`, through `blob.incomplete`, resuming what
    /// an earlier try or run left there; removes it on cancel or when it is
    /// not the file.
    fn download(
        &self,
        blob: &Path,
        url: &reqwest::Url,
        meta: &Meta,
        filename: &str,
        what: &str,
    ) -> Result<(), HubError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HubError::Io { path, source }
        };
        let part = PathBuf::from(format!("{}.incomplete", blob.display()));
        let dir = blob.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        // The partial file is its own lock: one writer at a time.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .map_err(io(&part))?;
        if file.try_lock().is_err() {
            return Err(HubError::Busy { what: what.into(), path: part });
        }
        if blob.exists() {
            // Another process finished it while this one waited.
            return Ok(());
        }
        let result = self.runtime.block_on(self.fetch_verified(&mut file, &part, url, meta, filename, what));
        match &result {
            Ok(()) => std::fs::rename(&part, blob).map_err(io(blob))?,
            // Kept, to resume.
            Err(HubError::Timeout { .. } | HubError::Network { .. }) if file_len(&part) > 0 => {}
            Err(_) => {
                let _ = std::fs::remove_file(&part);
                // Nothing of a refused file stays in the cache, not even its folder.
                let _ = std::fs::remove_dir(dir);
            }
        }
        result
    }

    async fn fetch_verified(
        &self,
        file: &mut std::fs::File,
        part: &Path,
        url: &reqwest::Url,
        meta: &Meta,
        filename: &str,
        what: &str,
    ) -> Result<(), HubError> {
        // Tries that failed since bytes last came.
        let mut failed = 0;
        let mut best = file_len(part);
        let mut started = false;
        loop {
            match self.get_once(file, part, url, meta, filename, what, &mut started).await {
                Ok(()) => break,
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Unreachable(reason)) => return Err(HubError::Network { what: what.into(), reason }),
                Err(Failure::Again(r)) => {
                    let now = file_len(part);
                    if now > best {
                        // Bytes came: the count of silent tries starts again.
                        (best, failed) = (now, 0);
                    }
                    failed += 1;
                    if failed >= TRIES {
                        return Err(self.gave_up(what, r, now));
                    }
                    self.pause(BACKOFF[failed as usize - 1]).await?;
                }
            }
        }
        if meta.etag.len() == 64 && meta.etag.bytes().all(|b| b.is_ascii_hexdigit()) {
            let actual = sha256_file(part).map_err(|source| HubError::Io { path: part.into(), source })?;
            if !actual.eq_ignore_ascii_case(&meta.etag) {
                return Err(HubError::Checksum { what: what.into(), expected: meta.etag.clone(), actual });
            }
        }
        Ok(())
    }

    /// One GET into `file` (at `part`): from where it ends when it holds a
    /// start, else from the beginning.
    #[allow(clippy::too_many_arguments)]
    async fn get_once(
        &self,
        file: &mut std::fs::File,
        part: &Path,
        url: &reqwest::Url,
        meta: &Meta,
        filename: &str,
        what: &str,
        started: &mut bool,
    ) -> Result<(), Failure> {
        let fatal = |e| Failure::Fatal(e);
        let io = |source| Failure::Fatal(HubError::Io { path: part.into(), source });
        let mut have = file_len(part);
        if meta.size.is_some_and(|s| have > s) {
            file.set_len(0).map_err(io)?;
            have = 0;
        }
        if have > 0 && meta.size == Some(have) {
            // All there (an earlier run stopped before checking it).
            return Ok(());
        }
        let mut req = self.http.get(url.clone()).headers(self.headers());
        if have > 0 {
            req = req.header(header::RANGE, format!("bytes={have}-"));
        }
        let mut resp = self.within(req.send()).await?;
        let status = resp.status();
        let h = resp.headers();
        let start = match status {
            StatusCode::PARTIAL_CONTENT if have > 0 => {
                let range = h.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or_default();
                match parse_content_range(range) {
                    Some((from, total)) if from == have => {
                        if let (Some(size), Some(total)) = (meta.size, total) {
                            if size != total {
                                return Err(fatal(size_mismatch(what, total, size)));
                            }
                        }
                        have
                    }
                    _ => {
                        // Not where asked: start over.
                        file.set_len(0).map_err(io)?;
                        return Err(Failure::Again(Reason::Network(format!("the server resumed wrongly ({range})"))));
                    }
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
                file.set_len(0).map_err(io)?;
                return Err(Failure::Again(Reason::Network("the server could not resume the download".into())));
            }
            StatusCode::OK => 0,
            s if s.is_success() => {
                return Err(fatal(HubError::NotTheFile { what: what.into(), why: format!("the server answered {s}") }))
            }
            s => return Err(status_failure(s, h, what)),
        };
        if is_web_page(h, filename) {
            return Err(fatal(web_page(what)));
        }
        let length = h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        if let (Some(size), Some(n)) = (meta.size, length) {
            if start + n != size {
                return Err(fatal(size_mismatch(what, start + n, size)));
            }
        }
        let total = meta.size.or(length.map(|n| start + n));
        if !*started {
            *started = true;
            if let Some(p) = &self.progress {
                p.on_progress(&start_event(total.unwrap_or(0)));
            }
        }
        if start == 0 {
            file.set_len(0).map_err(io)?;
        }
        file.seek(std::io::SeekFrom::Start(start)).map_err(io)?;
        let mut done = start;
        loop {
            let chunk = match self.within(resp.chunk()).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(Failure::Again(Reason::Network(_))) if total.is_some_and(|t| done < t) => {
                    return Err(Failure::Again(Reason::Short { got: done, want: total.unwrap_or(0) }))
                }
                Err(e) => return Err(e),
            };
            if done == 0 && starts_like_a_web_page(&chunk, filename) {
                return Err(fatal(web_page(what)));
            }
            file.write_all(&chunk).map_err(io)?;
            done += chunk.len() as u64;
            if let Some(size) = meta.size.filter(|s| done > *s) {
                return Err(fatal(HubError::NotTheFile {
                    what: what.into(),
                    why: format!("the server sent more than the {size} bytes the Hub's metadata says"),
                }));
            }
            if let Some(p) = &self.progress {
                p.on_progress(&progress_event(filename, done, total.unwrap_or(done)));
            }
        }
        file.sync_all().map_err(io)?;
        match total {
            Some(want) if done < want => Err(Failure::Again(Reason::Short { got: done, want })),
            _ => Ok(()),
        }
    }
}

/// The cached copy of `filename` at `rev`, if the cache has it.
fn cached(folder: &Path, rev: &str, filename: &str) -> Option<PathBuf> {
    let commit = if is_commit(rev) {
        rev.to_string()
    } else {
        std::fs::read_to_string(folder.join("refs").join(rev)).ok()?.trim().to_string()
    };
    plain_name(&commit)?;
    let snap = folder.join("snapshots").join(commit).join(filename);
    snap.exists().then_some(snap)
}

/// Points `snapshots/<commit>/<filename>` at the blob and `refs/<rev>` at the commit.
fn finalize(folder: &Path, rev: &str, commit: &str, filename: &str, etag: &str) -> Result<PathBuf, HubError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HubError::Io { path, source }
    };
    if !is_commit(rev) {
        let r = folder.join("refs").join(rev);
        std::fs::create_dir_all(r.parent().unwrap_or(folder)).map_err(io(&r))?;
        crate::util::write_atomic(&r, commit.as_bytes()).map_err(io(&r))?;
    }
    let snap = folder.join("snapshots").join(commit).join(filename);
    let dir = snap.parent().unwrap_or(folder);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let _ = std::fs::remove_file(&snap);
    #[cfg(unix)]
    {
        // snapshots/<commit>/<a/b/file> -> ../../../blobs/<etag>
        let ups = "../".repeat(1 + Path::new(filename).components().count());
        std::os::unix::fs::symlink(format!("{ups}blobs/{etag}"), &snap).map_err(io(&snap))?;
    }
    #[cfg(not(unix))]
    std::fs::copy(folder.join("blobs").join(etag), &snap).map_err(io(&snap))?;
    Ok(snap)
}

fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `name` as a relative path of plain components (no `..`, no root).
fn plain_relative(name: &str) -> Option<()> {
    let p = Path::new(name);
    let plain = !name.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    plain.then_some(())
}

/// `name` as one file name of letters, digits, `-`, `_` and `.` (an ETag, a commit).
fn plain_name(name: &str) -> Option<()> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then_some(())
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// "12 s", "0.5 s".
fn secs_text(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// `bytes FROM-TO/TOTAL` (TOTAL may be `*`): (FROM, TOTAL).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let (range, total) = v.trim().strip_prefix("bytes ")?.split_once('/')?;
    let from = range.split_once('-')?.0.trim().parse().ok()?;
    Some((from, total.trim().parse().ok()))
}

fn is_web_page(h: &HeaderMap, filename: &str) -> bool {
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
    html && !is_html_name(filename)
}

fn starts_like_a_web_page(body: &[u8], filename: &str) -> bool {
    let head: Vec<u8> = body.iter().skip_while(|b| b.is_ascii_whitespace()).take(15).copied().collect();
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    (head.starts_with("<!doctype html") || head.starts_with("<html")) && !is_html_name(filename)
}

fn is_html_name(filename: &str) -> bool {
    let f = filename.to_ascii_lowercase();
    f.ends_with(".html") || f.ends_with(".htm")
}

fn web_page(what: &str) -> HubError {
    HubError::NotTheFile {
        what: what.into(),
        why: "the server sent a web page (text/html) instead of the file (a proxy or sign-in page?)".into(),
    }
}

fn size_mismatch(what: &str, sent: u64, size: u64) -> HubError {
    HubError::NotTheFile {
        what: what.into(),
        why: format!("the server sends {sent} bytes but the Hub's metadata says the file has {size}"),
    }
}

/// A reqwest error as a try's failure: a refused connection or an unknown
/// host is final (a second later it would be the same); a broken one is not.
fn network_failure(e: &reqwest::Error) -> Failure {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let host = e.url().and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
    let host = host.unwrap_or_else(|| "the Hub".into());
    if e.is_connect() {
        Failure::Unreachable(format!("cannot connect to {host}: {cause}"))
    } else if e.is_builder() {
        Failure::Unreachable(e.to_string())
    } else {
        Failure::Again(Reason::Network(format!("the connection to {host} broke: {cause}")))
    }
}

/// A status that is not success: busy servers are tried again, the rest is final.
fn status_failure(status: StatusCode, h: &HeaderMap, what: &str) -> Failure {
    let code = status.as_u16();
    if matches!(code, 408 | 429 | 500 | 502 | 503 | 504) {
        return Failure::Again(Reason::Network(format!("the server answered {status}")));
    }
    let what = what.to_string();
    Failure::Fatal(match code {
        401 | 403 => HubError::Denied { what, status: code },
        404 => {
            let detail = match h.get("x-error-code").and_then(|v| v.to_str().ok()) {
                Some("RepoNotFound") => "no such repository on the Hub (or it is private: vidi login)",
                Some("RevisionNotFound") => "no such branch, tag or commit in the repository",
                _ => "no such file in the repository",
            };
            HubError::NotFound { what, detail: detail.into() }
        }
        _ => HubError::Network { what, reason: format!("the server answered {status}") },
    })
}

fn start_event(total_bytes: u64) -> hf_hub::progress::ProgressEvent {
    hf_hub::progress::ProgressEvent::Download(hf_hub::progress::DownloadEvent::Start { total_files: 1, total_bytes })
}

fn progress_event(filename: &str, done: u64, total: u64) -> hf_hub::progress::ProgressEvent {
    use hf_hub::progress::{DownloadEvent, FileProgress, FileStatus, ProgressEvent};
    ProgressEvent::Download(DownloadEvent::Progress {
        files: vec![FileProgress {
            filename: filename.into(),
            bytes_completed: done,
            total_bytes: total,
            status: if done >= total { FileStatus::Complete } else { FileStatus::InProgress },
        }],
    })
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ranges() {
        assert!(plain_relative("a/b.json").is_some());
        assert!(
            plain_relative("../x").is_none()
                && plain_relative("/etc/x").is_none()
                && plain_relative("a/../b").is_none()
        );
        assert!(plain_name("0123abcd").is_some() && plain_name("../x").is_none() && plain_name("..").is_none());
        assert_eq!(parse_content_range("bytes 1000-4999/5000"), Some((1000, Some(5000))));
        assert_eq!(parse_content_range("bytes 7-9/*"), Some((7, None)));
        assert_eq!(parse_content_range("1000-4999/5000"), None);
        assert!(starts_like_a_web_page(b"  <!DOCTYPE html><html>", "a.tar.gz"));
        assert!(!starts_like_a_web_page(b"<!DOCTYPE html>", "index.html"));
        assert_eq!(secs_text(Duration::from_millis(2500)), "2.5 s");
    }
}
