//! Room on the run folder's disk. A run keeps every epoch's checkpoint (the
//! model, its AdamW moments and the trainer state) and one `best/` model, each
//! written aside first; so before it starts, and before each epoch, the disk
//! must hold the checkpoints still to come and a new `best/`, plus a reserve
//! left free ([`RESERVE_ENV`]).

use std::path::Path;

use super::TrainError;

/// The environment variable giving the bytes a run leaves free on its disk
/// beyond what it writes ([`DEFAULT_RESERVE`] when unset).
pub const RESERVE_ENV: &str = "VIDI_MIN_FREE_BYTES";

/// The reserve when [`RESERVE_ENV`] is unset: 64 MiB.
pub const DEFAULT_RESERVE: u64 = 64 << 20;

/// The reserve: [`RESERVE_ENV`], else [`DEFAULT_RESERVE`].
pub fn reserve() -> Result<u64, TrainError> {
    match std::env::var(RESERVE_ENV) {
        Err(_) => Ok(DEFAULT_RESERVE),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| TrainError::Config(format!("{RESERVE_ENV}={v}: expected a whole number of bytes"))),
    }
}

/// Bytes an unprivileged writer may still use on the file system holding
/// `dir`; `None` when the system cannot say.
#[cfg(unix)]
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data, filled by the call; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // The field types differ between systems.
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Elsewhere the system is not asked (the writes themselves still fail cleanly).
#[cfg(not(unix))]
pub fn free_bytes(_: &Path) -> Option<u64> {
    None
}

/// The bytes of the files under `dir` (0 when it does not exist).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The bytes a checkpoint of a model with `params` parameters takes before
/// one is written: the f32 weights, AdamW's two f32 moments per weight, and
/// room for the JSON files and the safetensors headers.
pub fn checkpoint_estimate(params: u64) -> u64 {
    params.saturating_mul(12).saturating_add(1 << 20)
}

/// The bytes of a `best/` model (the f32 weights and its JSON files) before one is written.
pub fn model_estimate(params: u64) -> u64 {
    params.saturating_mul(4).saturating_add(1 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder's disk reports free space (a missing folder none), and a
    /// folder's size is its files', nested ones too.
    #[cfg(target_os = "linux")]
    #[test]
    fn free_space_and_folder_sizes() {
        let tmp = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
        let before = free_bytes(tmp.path()).expect("statvfs");
        assert!(before > 0);
        assert!(free_bytes(&tmp.path().join("no/such/folder")).is_none());
        assert_eq!(dir_size(tmp.path()), 0);
        std::fs::create_dir(tmp.path().join("sub")).expect("mkdir");
        std::fs::write(tmp.path().join("sub/a"), vec![1u8; 3000]).expect("write");
        std::fs::write(tmp.path().join("b"), vec![1u8; 500]).expect("write");
        assert_eq!(dir_size(tmp.path()), 3500);
    }
}
