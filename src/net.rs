//! Videos given as http(s) URLs, as transformers' pipeline takes them: each is
//! downloaded (redirects followed, no Range requests needed) into a temporary
//! file that is removed when it is dropped, when the download fails, and on
//! Ctrl-C ([`remove_temp_files`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Why a URL gave no video file.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// The server answered with an error status.
    #[error("the server answered {status}")]
    Status {
        /// e.g. "404 Not Found".
        status: String,
    },
    /// The server sent an HTML page.
    #[error("the server sent a web page (text/html), not a video")]
    WebPage,
    /// Nothing arrived for the timeout.
    #[error("the server sent nothing for {secs} s (--timeout)")]
    Stalled {
        /// The limit.
        secs: u64,
    },
    /// No connection, or it broke.
    #[error("{0}")]
    Network(String),
    /// The download could not be written (a full disk).
    #[error("cannot write the download to {path}: {source}")]
    Io {
        /// The temporary file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Stopped by the caller.
    #[error("the download was cancelled")]
    Cancelled,
    /// Not an http(s) URL.
    #[error("not an http(s) URL")]
    BadUrl,
}

/// True for `http://…` and `https://…` (what is downloaded instead of opened).
pub fn is_url(s: &str) -> bool {
    let l = s.trim_start().get(..8).unwrap_or(s).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// [`is_url`] of a path as given on a command line.
pub fn is_url_path(p: &Path) -> bool {
    p.to_str().is_some_and(is_url)
}

/// Options of [`download`].
pub struct UrlOptions<'a> {
    /// How long the server may stay silent.
    pub timeout: Duration,
    /// Called with (bytes received, total when the server says it).
    pub progress: Option<&'a (dyn Fn(u64, Option<u64>) + Sync)>,
    /// Set to stop the download.
    pub cancel: Option<&'a AtomicBool>,
}

impl Default for UrlOptions<'_> {
    fn default() -> Self {
        UrlOptions { timeout: Duration::from_secs(30), progress: None, cancel: None }
    }
}

/// Temporary files alive now (removed by [`remove_temp_files`] on Ctrl-C).
static TEMP_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A downloaded file, removed when dropped.
#[derive(Debug)]
pub struct TempVideo {
    path: PathBuf,
}

impl TempVideo {
    /// Where the download is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn new(url: &str) -> TempVideo {
        // Keep the URL's file name (its extension helps nobody but a human reading /tmp).
        let name: String = url
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(60)
            .collect();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("vidi-url-{}-{n}-{name}", std::process::id()));
        if let Ok(mut t) = TEMP_FILES.lock() {
            t.push(path.clone());
        }
        TempVideo { path }
    }
}

impl Drop for TempVideo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Ok(mut t) = TEMP_FILES.lock() {
            t.retain(|p| p != &self.path);
        }
    }
}

/// Removes every download still on disk (for a Ctrl-C handler, before it exits).
pub fn remove_temp_files() {
    if let Ok(t) = TEMP_FILES.lock() {
        for p in t.iter() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Downloads `url` into a temporary file.
pub fn download(url: &str, opts: &UrlOptions) -> Result<TempVideo, UrlError> {
    if !is_url(url) {
        return Err(UrlError::BadUrl);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UrlError::Network(format!("cannot start the download: {e}")))?;
    let temp = TempVideo::new(url);
    runtime.block_on(get(url, &temp.path, opts))?;
    Ok(temp)
}

const TICK: Duration = Duration::from_millis(200);

/// `fut`, unless the server stays silent for the timeout or the caller cancels.
async fn within<T>(
    opts: &UrlOptions<'_>,
    fut: impl std::future::Future<Output = reqwest::Result<T>>,
) -> Result<T, UrlError> {
    let mut fut = std::pin::pin!(fut);
    let start = std::time::Instant::now();
    loop {
        if opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(UrlError::Cancelled);
        }
        match tokio::time::timeout(TICK, fut.as_mut()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => return Err(network_error(&e)),
            Err(_) if start.elapsed() >= opts.timeout => {
                return Err(UrlError::Stalled { secs: opts.timeout.as_secs_f64().ceil() as u64 })
            }
            Err(_) => {}
        }
    }
}

fn network_error(e: &reqwest::Error) -> UrlError {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let host = e.url().and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
    let host = host.unwrap_or_else(|| "the server".into());
    if e.is_connect() {
        UrlError::Network(format!("cannot connect to {host}: {cause}"))
    } else if e.is_redirect() {
        UrlError::Network(format!("too many redirects: {cause}"))
    } else if e.is_builder() {
        UrlError::BadUrl
    } else {
        UrlError::Network(format!("the connection to {host} broke: {cause}"))
    }
}

async fn get(url: &str, path: &Path, opts: &UrlOptions<'_>) -> Result<(), UrlError> {
    let agent = format!("vidi/{}", env!("CARGO_PKG_VERSION"));
    let client = reqwest::Client::builder()
        .user_agent(agent)
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
        .map_err(|e| UrlError::Network(e.to_string()))?;
    let mut resp = within(opts, client.get(url).send()).await?;
    let status = resp.status();
    if !status.is_success() {
        return Err(UrlError::Status { status: status.to_string() });
    }
    let html = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("text/html"));
    if html {
        return Err(UrlError::WebPage);
    }
    let total = resp.content_length();
    let io = |source| UrlError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::create(path).map_err(io)?;
    let mut done = 0u64;
    if let Some(p) = opts.progress {
        p(0, total);
    }
    while let Some(chunk) = within(opts, resp.chunk()).await? {
        file.write_all(&chunk).map_err(io)?;
        done += chunk.len() as u64;
        if let Some(p) = opts.progress {
            p(done, total);
        }
    }
    if let Some(t) = total.filter(|t| done < *t) {
        return Err(UrlError::Network(format!("the connection ended after {done} of {t} bytes")));
    }
    file.sync_all().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("https://huggingface.co/x/resolve/main/a.mp4"));
        assert!(is_url("HTTP://127.0.0.1:8000/a.avi"));
        assert!(!is_url("clips/https.mp4"));
        assert!(!is_url("udp://127.0.0.1:1234"));
        assert!(!is_url("http:/missing-slash"));
    }
}
