//! The Hugging Face Hub: downloads into its cache (hf-hub), and safe
//! extraction of downloaded archives. The only module that talks to the network.
//!
//! `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE` and `HF_TOKEN` are honoured, so a
//! mirror, an offline cache or a local test server work without flags.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use hf_hub::progress::Progress;
use hf_hub::HFClientSync;

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
    /// The Hub client failed (network, not found, auth).
    #[error("{what}: {source}")]
    Client {
        /// What was being fetched.
        what: String,
        /// hf-hub's error.
        #[source]
        source: hf_hub::HFError,
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
    let (owner, name) = split_repo_id(repo_id)?;
    let what = format!("downloading {filename} from dataset {repo_id}");
    let client = HFClientSync::new().map_err(|source| HubError::Client { what: what.clone(), source })?;
    client
        .dataset(owner, name)
        .download_file()
        .filename(filename)
        .maybe_revision(revision.map(str::to_string))
        .maybe_progress(progress)
        .send()
        .map_err(|source| HubError::Client { what, source })
}

/// Extracts a `.tar.gz` (or plain `.tar`) archive into `out`.
///
/// Every entry is checked before anything is written: absolute paths, `..`
/// components and links pointing outside `out` are refused. Extraction goes
/// to a staging folder inside `out` first and is moved into place only when
/// complete, and never over an existing file. Returns the top-level paths created.
pub fn extract_archive(
    archive: &Path,
    out: &Path,
    on_bytes: &mut dyn FnMut(u64, u64),
) -> Result<Vec<PathBuf>, HubError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HubError::Io { path, source }
    };
    let total = std::fs::metadata(archive).map_err(io(archive))?.len();
    // Pass 1: validate every entry.
    let tops = {
        let mut ar = open_tar(archive)?;
        let mut tops = std::collections::BTreeSet::new();
        for entry in ar.entries().map_err(io(archive))? {
            let entry = entry.map_err(io(archive))?;
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
        let mut ar = tar::Archive::new(maybe_gz(counted, archive)?);
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

fn open_tar(path: &Path) -> Result<tar::Archive<Box<dyn Read>>, HubError> {
    let f = std::fs::File::open(path).map_err(|source| HubError::Io { path: path.into(), source })?;
    Ok(tar::Archive::new(maybe_gz(f, path)?))
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

/// The files of a model repo vidi needs, in the order tried for weights.
const MODEL_CONFIG_FILES: [&str; 2] = ["config.json", "preprocessor_config.json"];

/// A `--model` argument: an existing local folder, else a Hub model id
/// (`owner/name`) downloaded into the hf-hub cache (or found there offline).
/// Returns the folder holding `config.json` and the weights.
pub fn resolve_model(spec: &str, revision: Option<&str>, progress: Option<Progress>) -> Result<PathBuf, HubError> {
    let local = Path::new(spec);
    if local.is_dir() {
        return Ok(local.to_path_buf());
    }
    let (owner, name) = split_repo_id(spec).map_err(|_| HubError::NotAModel(spec.to_string()))?;
    let client = HFClientSync::new().map_err(|source| HubError::Client { what: format!("model {spec}"), source })?;
    let repo = client.model(owner, name);
    let get = |file: &str| {
        repo.download_file()
            .filename(file)
            .maybe_revision(revision.map(str::to_string))
            .maybe_progress(progress.clone())
            .send()
    };
    let config = get(MODEL_CONFIG_FILES[0])
        .map_err(|source| HubError::Client { what: format!("downloading config.json of model {spec}"), source })?;
    let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
    // The processor config is optional (defaults apply).
    let _ = get(MODEL_CONFIG_FILES[1]);
    if get("model.safetensors").is_ok() {
        return Ok(dir);
    }
    if let Ok(index) = get("model.safetensors.index.json") {
        let text = std::fs::read_to_string(&index).map_err(|source| HubError::Io { path: index.clone(), source })?;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let shards: std::collections::BTreeSet<String> = v["weight_map"]
            .as_object()
            .map(|m| m.values().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default();
        for s in shards {
            get(&s).map_err(|source| HubError::Client { what: format!("downloading {s} of model {spec}"), source })?;
        }
        return Ok(dir);
    }
    get("pytorch_model.bin")
        .map_err(|source| HubError::Client { what: format!("downloading the weights of model {spec}"), source })?;
    Ok(dir)
}
