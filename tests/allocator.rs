//! `backend::tune_allocator` makes a freed large buffer be reused instead of
//! mapped afresh (and faulted in page by page) on the next allocation, on the
//! main thread and on a worker thread started after it, as in the app.
//!
//! Its own process (no test harness): the tuning must come before any other
//! thread allocates, as it does in `vidi`'s `main`.

/// Minor page faults of the calling thread so far.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn page_faults() -> i64 {
    // SAFETY: getrusage writes the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut u);
        u.ru_minflt
    }
}

/// Faults taken by two more buffers of `bytes` after a first one was freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn faults_of_reused_buffers(bytes: usize) -> i64 {
    let touch = || std::hint::black_box(vec![1u8; bytes]).len();
    touch();
    let before = page_faults();
    touch();
    touch();
    page_faults() - before
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn main() {
    // Larger than glibc's 32 MiB mmap ceiling and than a worker arena's 64 MiB heap:
    // an attention matrix of a VideoMAE-base training step is 118 MB.
    const BYTES: usize = 128 << 20;
    let pages = (BYTES / 4096) as i64;
    vidi::backend::tune_allocator();
    let main_faults = faults_of_reused_buffers(BYTES);
    let worker_faults = std::thread::spawn(|| faults_of_reused_buffers(BYTES)).join().expect("worker thread");
    vidi::backend::release_memory();
    // Untuned, each buffer is a fresh mapping: `pages` faults apiece, 2 * pages in all.
    for (thread, faults) in [("main", main_faults), ("worker", worker_faults)] {
        assert!(faults < pages / 10, "{thread} thread: {faults} page faults for two reused buffers of {pages} pages");
        println!("{thread} thread: {faults} page faults for two reused buffers of {pages} pages");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() {
    println!("allocator tuning applies to glibc on Linux only");
}
