//! vidi's integration tests, one binary. Modules by area; shared helpers here.

mod annotations;
#[cfg(feature = "gui")]
mod app;
mod classify;
mod cli;
mod dataset;
mod fuzz;
mod gpu;
mod hub;
mod layout;
mod memory;
mod models;
mod net;
mod refusals;
mod share;
mod sources;
mod train;
mod transforms;
mod video;
mod videoprism;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The committed fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A committed real clip.
pub fn clip(name: &str) -> PathBuf {
    fixtures().join("clips").join(name)
}

/// Runs the ffmpeg CLI (quiet, overwrite) with `args`; panics with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg CLI is needed by the tests (scripts/setup.sh --test installs it)");
    assert!(out.status.success(), "ffmpeg {:?} failed: {}", args, String::from_utf8_lossy(&out.stderr));
}

/// `ffprobe -count_frames` on the default video stream: (frames, width, height, codec).
pub fn ffprobe_count(path: &Path, stream: &str) -> (usize, u32, u32, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", stream])
        .args(["-show_entries", "stream=nb_read_frames,width,height,codec_name", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let s = &v["streams"][0];
    (
        s["nb_read_frames"].as_str().and_then(|x| x.parse().ok()).unwrap_or(0),
        s["width"].as_u64().unwrap_or(0) as u32,
        s["height"].as_u64().unwrap_or(0) as u32,
        s["codec_name"].as_str().unwrap_or_default().to_string(),
    )
}

/// Frame `n` (0-based) of `path` as RGB24, decoded by the ffmpeg CLI (an independent reference).
pub fn ffmpeg_frame_rgb(path: &Path, n: usize, extra_input_args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(extra_input_args)
        .arg("-i")
        .arg(path)
        .args(["-map", "0:v:0", "-vf", &format!("select=eq(n\\,{n})"), "-vsync", "passthrough", "-frames:v", "1"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Reads one tensor from a safetensors file as f32 (from f32 or u8 data) with its shape.
pub fn read_tensor(file: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let t = st.tensor(name).unwrap_or_else(|_| panic!("{name} not in {}", file.display()));
    let data = match t.dtype() {
        safetensors::Dtype::F32 => {
            t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        safetensors::Dtype::U8 => t.data().iter().map(|b| *b as f32).collect(),
        d => panic!("unexpected dtype {d:?}"),
    };
    (t.shape().to_vec(), data)
}

/// Max |a - b| over two equal-length slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Mean |a - b| over two equal-length byte slices (pixels).
pub fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>() / a.len().max(1) as f64
}

/// A child process that ran to its end.
pub struct Finished {
    /// How it ended.
    pub status: std::process::ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// Its peak resident memory in bytes (see [`run_measured`]).
    pub peak_rss_bytes: u64,
}

/// `VmHWM` (peak resident set) of a running process (`self` or a pid), in bytes.
fn vm_hwm_bytes(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs `cmd` to its end and measures its own peak resident memory. A run
/// longer than `limit` is killed and fails the test (instead of hanging it).
///
/// `ru_maxrss` from `wait4` alone would not do: Linux folds into it the peak
/// of the memory image a process replaces on `exec`, which for a child
/// spawned from this test binary is the whole test process (and
/// `RUSAGE_CHILDREN` covers every test's children). So the child's own
/// `VmHWM`, a high-water mark, is read while it runs; and when `ru_maxrss`
/// exceeds this process's own peak, it can only be the child's, and is exact.
pub fn run_measured(cmd: &mut Command, limit: std::time::Duration) -> Finished {
    use std::io::{Read, Seek};
    use std::os::unix::process::ExitStatusExt;
    let (mut out, mut err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    // spawn returns once the child has exec'd: from then on /proc shows its own image.
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let ours = vm_hwm_bytes("self").unwrap_or(u64::MAX);
    let start = std::time::Instant::now();
    let mut status = 0;
    let mut peak = 0u64;
    // SAFETY: rusage is plain data, filled by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        if let Some(hwm) = vm_hwm_bytes(&pid.to_string()) {
            peak = peak.max(hwm);
        }
        // SAFETY: pid is our own unreaped child; status and usage are valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "{cmd:?}: waitpid failed: {}", std::io::Error::last_os_error());
        if start.elapsed() > limit {
            // SAFETY: the child is not reaped yet, so pid still names it.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("{cmd:?} was still running after {limit:?} (killed)");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(child);
    // Linux reports ru_maxrss in KiB.
    let max_rss = usage.ru_maxrss.max(0) as u64 * 1024;
    if max_rss > ours {
        peak = peak.max(max_rss);
    }
    let read = |f: &mut std::fs::File| {
        let mut s = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut s).unwrap();
        s
    };
    Finished {
        status: std::process::ExitStatus::from_raw(status),
        stdout: read(&mut out),
        stderr: read(&mut err),
        peak_rss_bytes: peak,
    }
}
