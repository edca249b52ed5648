//! One writer per run folder: an advisory lock on `RUN/.lock`, taken before a
//! run reads or writes anything in the folder and held until it ends.
//!
//! The lock is the OS's (`flock` on Linux, through [`std::fs::File::try_lock`]),
//! so a process that dies, however it dies, lets go of it. The file holds the
//! holder's process id and command line, so a refusal can say who has the run.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::{io_err, TrainError};

/// The lock file's name inside a run folder.
pub const LOCK_FILE: &str = ".lock";

/// A held run folder; dropping it lets go (and removes the lock file, and the
/// folders it created when nothing else was written in them).
#[derive(Debug)]
pub struct RunLock {
    file: std::fs::File,
    path: PathBuf,
    /// Folders this lock created, deepest first.
    created: Vec<PathBuf>,
}

impl RunLock {
    /// Takes `run`'s lock, creating the folder when `create` and it is missing
    /// (else a missing folder is not a run folder).
    /// Another holder gives [`TrainError::InUse`] at once (no waiting), and
    /// nothing in the folder is changed.
    pub fn acquire(run: &Path, create: bool) -> Result<RunLock, TrainError> {
        let mut created = Vec::new();
        if !create && !run.is_dir() {
            return Err(TrainError::Config(format!("{}: not a run folder (no such folder)", run.display())));
        }
        if create {
            let mut missing: Vec<PathBuf> = run
                .ancestors()
                .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
                .map(Path::to_path_buf)
                .collect();
            std::fs::create_dir_all(run).map_err(io_err(run))?;
            created.append(&mut missing);
        }
        let path = run.join(LOCK_FILE);
        let remove_created = |created: &[PathBuf]| {
            for d in created {
                let _ = std::fs::remove_dir(d);
            }
        };
        // A holder that ends removes the file; one who opened it just before
        // then holds a lock on a file no longer in the folder, so the lock
        // counts only when the file locked is still the one at `path`.
        for _ in 0..100 {
            let mut file =
                match std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        remove_created(&created);
                        return Err(io_err(&path)(e));
                    }
                };
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    remove_created(&created);
                    return Err(TrainError::InUse { run: run.to_path_buf(), pid: holder_pid(&mut file) });
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    remove_created(&created);
                    return Err(io_err(&path)(e));
                }
            }
            if !same_file(&file, &path) {
                continue;
            }
            let args: Vec<String> = std::env::args().collect();
            let note = format!("{}\n{}\n", std::process::id(), args.join(" "));
            let written = file.set_len(0).and_then(|()| file.write_all(note.as_bytes())).and_then(|()| file.flush());
            if let Err(e) = written {
                remove_created(&created);
                return Err(io_err(&path)(e));
            }
            return Ok(RunLock { file, path, created });
        }
        remove_created(&created);
        Err(io_err(&path)(std::io::Error::other("the lock file keeps being replaced")))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked, so no one locks the old file and counts it.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
        for d in &self.created {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The process id written in a lock file held by another process. The holder
/// writes it just after locking, so an empty file is read again for a moment.
fn holder_pid(file: &mut std::fs::File) -> Option<u32> {
    for _ in 0..20 {
        let mut text = String::new();
        if file.rewind().is_ok() && file.read_to_string(&mut text).is_ok() {
            if let Some(pid) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                return Some(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// Whether the open `file` is the file now at `path`.
#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether the open `file` is the file now at `path` (elsewhere: taken as so).
#[cfg(not(unix))]
fn same_file(_: &std::fs::File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two opens of one lock file conflict even inside one process (the lock
    /// belongs to the open file), so one process can prove the refusal.
    #[test]
    fn a_held_run_folder_is_refused_and_freed_on_drop() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let run = tmp.path().join("a/run");
        let first = RunLock::acquire(&run, true).expect("first lock");
        let note = std::fs::read_to_string(run.join(LOCK_FILE)).expect("lock file");
        assert_eq!(note.lines().next(), Some(std::process::id().to_string().as_str()));
        match RunLock::acquire(&run, true) {
            Err(TrainError::InUse { run: r, pid }) => {
                assert_eq!(r, run);
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("a second lock was not refused: {other:?}"),
        }
        // The refusal changed nothing: the holder's note is still there.
        assert_eq!(std::fs::read_to_string(run.join(LOCK_FILE)).expect("lock file"), note);
        drop(first);
        // Nothing was written beside the lock: the folders it made are gone again.
        assert!(!tmp.path().join("a").exists());
        let again = RunLock::acquire(&run, true).expect("lock after the first let go");
        std::fs::write(run.join("config.json"), "{}").expect("write");
        drop(again);
        assert!(run.join("config.json").exists() && !run.join(LOCK_FILE).exists());
    }
}
