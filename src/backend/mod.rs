//! The one place that names Burn backends: where models compute, tensors in
//! host memory, and the one dispatch point for the heavy operations.
//!
//! - [`device`]: the device choice (`--device`, `VIDI_DEVICE`, the app's
//!   shared wgpu device).
//! - [`host`]: [`HostTensor`] and moving tensors to and from a device.
//! - [`ops`]: linear, linear + residual, LayerNorm, GELU, attention over token
//!   groups and the AdamW update. Each decides in one place, by one rule
//!   ([`ops::route`]), whether vidi's CPU kernel, its autodiff form or Burn's
//!   generic tensor ops run. Model files call these and read as plain math.
//! - `kernels` (private): the CPU kernels and their autodiff operations.

pub mod blocked;
pub mod device;
pub mod host;
mod kernels;
pub mod ops;

pub use device::{
    adapter_reports, adapters, check_f16, choice_from, cpu, device_memory, f16_device, host_device, is_real_gpu,
    kernel_launches, on_wgpu_device, select, set_precision, window_device_headless, AdapterReport, BackendError,
    Compute, DeviceChoice, Precision,
};
pub use host::{device_reads, to_device, to_host, HostTensor, Scalar};

/// Keeps freed tensor buffers in the process for reuse (glibc on Linux).
///
/// By default glibc serves every allocation over 128 KiB (later up to 32 MiB,
/// adaptively) with a fresh `mmap` and unmaps it on free, so each large
/// activation, gradient and attention matrix costs page faults and the kernel
/// zeroing its pages: 15% of a VideoMAE-base forward pass on the CPU, and
/// nearly half the time of a training step (sys time). Serving them from the
/// heap and not trimming it on free makes them reuse memory instead: on 2
/// cores a VideoMAE-base forward pass went from 1.67 to about 1.45 s and a
/// training step from 16.0 to 10.4 s, with the same peak memory. [`release_memory`] gives the retained
/// memory back when a long job ends. One arena for all threads: a worker
/// thread's own arena grows in 64 MiB heaps and would still map anything
/// larger (an attention matrix of a training step is 118 MB). Call once, early.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns the heap memory freed since the last call to the system (after a
/// training run, an evaluation or a batch of classifications).
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and frees only unused memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
