//! Where models compute. Automatic choice: a real GPU (discrete, integrated
//! or virtual) through Burn's wgpu backend when wgpu finds one; otherwise
//! Burn's pure-Rust CPU backend (flex), which on a CPU-only machine is several
//! times faster than a software Vulkan adapter. `--device cpu|gpu` or
//! `VIDI_DEVICE=cpu|gpu` override it.

use burn::tensor::Device;

/// Which device to compute on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// A GPU when there is one, else the CPU.
    #[default]
    Auto,
    /// The CPU (Burn flex backend).
    Cpu,
    /// The GPU (Burn wgpu backend); a software adapter (lavapipe) when it is
    /// the only one, with a warning; an error when there is none.
    Gpu,
}

/// The device picked, and how to describe it to the user.
#[derive(Clone, Debug)]
pub struct Compute {
    /// The Burn device.
    pub device: Device,
    /// e.g. "GPU: NVIDIA H100 (Vulkan)" or "CPU (flex, 16 threads)".
    pub description: String,
    /// Whether it is a GPU.
    pub is_gpu: bool,
    /// Something the user should know about the choice (one line).
    pub warning: Option<String>,
}

/// No usable device for the choice.
#[derive(Clone, Debug, thiserror::Error)]
pub enum BackendError {
    /// `gpu` asked for, none found.
    #[error("no GPU adapter found (wgpu saw: {seen}); use --device cpu")]
    NoGpu {
        /// The adapters wgpu listed.
        seen: String,
    },
    /// A bad `VIDI_DEVICE` value.
    #[error("VIDI_DEVICE='{0}' is not one of auto, cpu, gpu")]
    BadEnv(String),
    /// `--precision f16` where it cannot run.
    #[error("--precision f16 is not available: {0}; use --precision f32")]
    NoF16(String),
}

/// The float type models compute in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats everywhere (the default).
    #[default]
    F32,
    /// 16-bit floats, on a GPU whose adapter has `SHADER_F16`. Inference:
    /// weights, activations and arithmetic all f16. Training: mixed precision
    /// (products in f16, f32 master weights and optimizer moments, dynamic
    /// loss scaling; see [`crate::backend::ops::autocast`]).
    F16,
}

/// Makes every float tensor later created on `compute`'s device f16, when
/// `precision` asks for it: the device must be a GPU whose adapter has
/// `SHADER_F16` (Burn's wgpu backend computes in f16 only there), and
/// nothing may have been created on it yet in this process. f32 changes nothing.
pub fn set_precision(compute: &mut Compute, precision: Precision) -> Result<(), BackendError> {
    if precision == Precision::F32 {
        return Ok(());
    }
    check_f16(compute, precision)?;
    let f16 = burn::tensor::FloatDType::F16;
    compute.device.configure(f16).map_err(|e| BackendError::NoF16(format!("{e:?}")))?;
    compute.description.push_str(", f16");
    Ok(())
}

/// Whether `compute` can compute in `precision`: f32 always; f16 on a GPU
/// whose adapter has `SHADER_F16`. It changes nothing: [`set_precision`]
/// checks with it before making the device f16 (inference); mixed-precision
/// training (`--precision f16`) checks with it and leaves the device f32 (the
/// master weights and moments), the products casting to f16 on the fly.
pub fn check_f16(compute: &Compute, precision: Precision) -> Result<(), BackendError> {
    if precision == Precision::F32 {
        return Ok(());
    }
    if !compute.is_gpu {
        return Err(f32_only(compute));
    }
    if !compute.device.supports_dtype(burn::tensor::FloatDType::F16) {
        return Err(BackendError::NoF16(format!("{} has no SHADER_F16 (16-bit float shaders)", compute.description)));
    }
    Ok(())
}

fn f32_only(compute: &Compute) -> BackendError {
    BackendError::NoF16(format!("{} computes in f32 only (f16 needs --device gpu)", compute.description))
}

/// What wgpu says about one adapter.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterReport {
    /// e.g. "NVIDIA H100 80GB HBM3" or "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// Vulkan, Metal, Dx12, Gl.
    pub backend: String,
    /// DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu, Other.
    pub device_type: String,
    /// The driver and its version.
    pub driver: String,
    /// Whether it has 16-bit float shaders (what `--precision f16` needs).
    pub shader_f16: bool,
    /// Whether it reports cooperative-matrix (tensor core) support to wgpu.
    pub cooperative_matrix: bool,
    /// The largest storage buffer binding, bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Every feature it reports.
    pub features: Vec<String>,
}

/// The adapters wgpu sees, with their features.
pub fn adapter_reports() -> Vec<AdapterReport> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster_block(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|a| {
            let (i, f, l) = (a.get_info(), a.features(), a.limits());
            AdapterReport {
                name: i.name,
                backend: format!("{:?}", i.backend),
                device_type: format!("{:?}", i.device_type),
                driver: format!("{} {}", i.driver, i.driver_info).trim().to_string(),
                shader_f16: f.contains(wgpu::Features::SHADER_F16),
                cooperative_matrix: f.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
                max_storage_buffer_binding_size: l.max_storage_buffer_binding_size as u64,
                features: f.iter_names().map(|(n, _)| n.to_string()).collect(),
            }
        })
        .collect()
}

/// The device the app's window creates for rendering and models alike
/// ([`shared_device_descriptor`] on the adapter `--device gpu` takes: a real
/// GPU, else the software one), made without a window, and Burn's wgpu
/// backend on it ([`on_wgpu_device`]).
pub fn window_device_headless() -> Result<Compute, String> {
    headless_device()
}

/// A device of its own, with every float f16, on the adapter `compute` (a
/// GPU) computes on: f16 inference beside the f32 device that trains, as the
/// app's Classify tab offers it (Burn fixes a device's float type once, so
/// f16 needs a second device). Made once per process; the refusal, where the
/// adapter has no `SHADER_F16`, is made once too.
pub fn f16_device(compute: &Compute) -> Result<Compute, BackendError> {
    static F16: std::sync::OnceLock<Result<Compute, BackendError>> = std::sync::OnceLock::new();
    if !compute.is_gpu {
        return Err(f32_only(compute));
    }
    F16.get_or_init(|| {
        let mut c = headless_device().map_err(BackendError::NoF16)?;
        c.description = c.description.replace(", the window's own device", ", a second device");
        set_precision(&mut c, Precision::F16)?;
        Ok(c)
    })
    .clone()
}

fn headless_device() -> Result<Compute, String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster_block(instance.enumerate_adapters(wgpu::Backends::all()));
    let adapter = adapters
        .iter()
        .find(|a| is_real_gpu(a.get_info().device_type))
        .or_else(|| adapters.iter().find(|a| a.get_info().device_type == wgpu::DeviceType::Cpu))
        .ok_or("no wgpu adapter")?;
    let descriptor = shared_device_descriptor(adapter.features(), adapter.limits());
    let (device, queue) = pollster_block(adapter.request_device(&descriptor)).map_err(|e| e.to_string())?;
    on_wgpu_device(&instance, adapter, &device, &queue)
}

/// The choice from `--device` (when given) or `VIDI_DEVICE`.
pub fn choice_from(flag: Option<DeviceChoice>) -> Result<DeviceChoice, BackendError> {
    if let Some(f) = flag {
        return Ok(f);
    }
    match std::env::var("VIDI_DEVICE") {
        Err(_) => Ok(DeviceChoice::Auto),
        Ok(v) => match v.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "gpu" => Ok(DeviceChoice::Gpu),
            _ => Err(BackendError::BadEnv(v)),
        },
    }
}

/// The GPU adapters wgpu can see, as (name, backend, kind), CPU adapters included.
pub fn adapters() -> Vec<(String, String, wgpu::DeviceType)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster_block(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|a| {
            let i = a.get_info();
            (i.name, format!("{:?}", i.backend), i.device_type)
        })
        .collect()
}

fn pollster_block<F: std::future::Future>(f: F) -> F::Output {
    // enumerate_adapters and request_device resolve without waiting on native platforms.
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// The CPU device.
pub fn cpu() -> Compute {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Compute {
        device: Device::flex(),
        description: format!("CPU (flex, {threads} threads)"),
        is_gpu: false,
        warning: None,
    }
}

/// The device of tensors kept in host memory (the CPU backend).
pub fn host_device() -> Device {
    Device::flex()
}

/// Picks the device for `choice`.
pub fn select(choice: DeviceChoice) -> Result<Compute, BackendError> {
    if choice == DeviceChoice::Cpu {
        return Ok(cpu());
    }
    let all = adapters();
    let gpu = all.iter().find(|a| is_real_gpu(a.2));
    if let (None, DeviceChoice::Gpu, Some((name, backend, _))) =
        (gpu, choice, all.iter().find(|a| a.2 == wgpu::DeviceType::Cpu))
    {
        // Only a software adapter (lavapipe): the wgpu path, as asked, with a warning.
        return Ok(Compute {
            device: Device::wgpu(burn::tensor::DeviceKind::Cpu),
            description: format!("GPU: {name} ({backend}), a software adapter"),
            is_gpu: true,
            warning: Some(format!(
                "{name} is a software adapter (no GPU found): the wgpu path runs, but slower than --device cpu"
            )),
        });
    }
    match (gpu, choice) {
        (Some((name, backend, _)), _) => Ok(Compute {
            device: Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            description: format!("GPU: {name} ({backend})"),
            is_gpu: true,
            warning: None,
        }),
        (None, DeviceChoice::Gpu) => {
            let seen = if all.is_empty() {
                "no adapters".to_string()
            } else {
                all.iter().map(|a| format!("{} [{:?}]", a.0, a.2)).collect::<Vec<_>>().join(", ")
            };
            Err(BackendError::NoGpu { seen })
        }
        (None, _) => Ok(cpu()),
    }
}

/// Burn's wgpu backend on a wgpu device created by someone else (the app's
/// renderer), so that drawing and computing share one GPU and one queue.
/// The device must have been created with the adapter's full features and limits.
pub fn on_wgpu_device(
    instance: &wgpu::Instance,
    adapter: &wgpu::Adapter,
    device: &wgpu::Device,
    queue: &wgpu::Queue,
) -> Result<Compute, String> {
    let info = adapter.get_info();
    let setup = burn::tensor::wgpu::WgpuSetup {
        instance: instance.clone(),
        adapter: adapter.clone(),
        device: device.clone(),
        queue: queue.clone(),
        backend: info.backend,
    };
    let device = Device::wgpu_options().setup(setup).init().map_err(|e| e.to_string())?;
    Ok(Compute {
        device,
        description: format!("GPU: {} ({:?}), the window's own device", info.name, info.backend),
        is_gpu: true,
        warning: None,
    })
}

/// The device descriptor for a wgpu device that the window and Burn share:
/// the adapter's limits and features, as Burn's kernels expect them, less
/// `MAPPABLE_PRIMARY_BUFFERS` (slow on discrete GPUs).
///
/// Many Vulkan GPUs report *experimental* features (ray query, mesh shaders,
/// cooperative matrix), and wgpu refuses a device that requires them unless
/// experimental features are enabled. Burn's wgpu runtime reads the adapter's
/// features (cooperative matrix for its tensor-core matmul) and enables them
/// on the devices it creates itself; so does this descriptor, knowingly, when
/// and only when it requires one of them.
pub fn shared_device_descriptor(features: wgpu::Features, limits: wgpu::Limits) -> wgpu::DeviceDescriptor<'static> {
    let required_features = features - wgpu::Features::MAPPABLE_PRIMARY_BUFFERS;
    let experimental_features = if required_features.intersects(wgpu::Features::all_experimental_mask()) {
        // SAFETY: the opt-in Burn's runtime (cubecl-wgpu) makes for its own
        // devices; vidi's renderer uses none of these features, and Burn's
        // kernels use them as on the devices it creates.
        unsafe { wgpu::ExperimentalFeatures::enabled() }
    } else {
        wgpu::ExperimentalFeatures::disabled()
    };
    wgpu::DeviceDescriptor {
        label: Some("vidi: window and models"),
        required_features,
        required_limits: limits,
        experimental_features,
        ..Default::default()
    }
}

/// The bytes of device memory Burn's allocator has in use and has reserved
/// on `device`; `None` on the CPU.
pub fn device_memory(device: &Device) -> Option<(u64, u64)> {
    if *device == Device::flex() {
        return None;
    }
    device.memory_pool_usage().map(|u| (u.bytes_in_use, u.bytes_reserved))
}

/// The GPU kernels launched while `work` runs, by (shortened) kernel name,
/// `device` synced before and after so that queued and fused work is counted
/// where it belongs. Counted by cubecl's launch observer over the whole
/// process (Burn launches from its own threads): run nothing else on a GPU
/// beside it. The CPU backend launches none.
pub fn kernel_launches<R>(device: &Device, work: impl FnOnce() -> R) -> (R, std::collections::BTreeMap<String, usize>) {
    use burn_cubecl::cubecl::logging::{LaunchObservation, LaunchObserver};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    #[derive(Default)]
    struct Count(Mutex<BTreeMap<&'static str, usize>>);
    impl LaunchObserver for Count {
        fn launched(&self, kernel: &'static str) {
            if let Ok(mut m) = self.0.lock() {
                *m.entry(kernel).or_default() += 1;
            }
        }
    }
    let _ = device.sync();
    let count = Arc::new(Count::default());
    let watching = LaunchObservation::new(count.clone());
    let r = work();
    let _ = device.sync();
    drop(watching);
    let counts = count.0.lock().map(|m| m.clone()).unwrap_or_default();
    let mut short = BTreeMap::new();
    for (name, n) in counts {
        *short.entry(short_type_name(name)).or_default() += n;
    }
    (r, short)
}

/// `a::b::Kernel<c::d::Op>` -> `Kernel<Op>`.
fn short_type_name(name: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    for c in name.chars() {
        if matches!(c, '<' | '>' | ',' | ' ') {
            out.push_str(word.rsplit("::").next().unwrap_or(""));
            out.push(c);
            word.clear();
        } else {
            word.push(c);
        }
    }
    out.push_str(word.rsplit("::").next().unwrap_or(""));
    out
}

/// Whether `adapter` gives a device for `descriptor`: wgpu's reason if not.
/// (The device made to find out is dropped at once.)
pub fn try_device(adapter: &wgpu::Adapter, descriptor: &wgpu::DeviceDescriptor<'_>) -> Result<(), String> {
    pollster_block(adapter.request_device(descriptor)).map(|_| ()).map_err(|e| e.to_string())
}

/// Whether an adapter is a real GPU (not a software rasteriser such as lavapipe).
pub fn is_real_gpu(kind: wgpu::DeviceType) -> bool {
    matches!(kind, wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::VirtualGpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An adapter that reports every experimental feature (as many Vulkan GPUs
    /// report some) gets a descriptor wgpu accepts: experimental features
    /// required only with them enabled. One without gets them disabled.
    #[test]
    fn the_shared_descriptor_enables_experimental_features_it_requires() {
        let every = wgpu::Features::all();
        assert!(every.contains(wgpu::Features::all_experimental_mask()));
        let d = shared_device_descriptor(every, wgpu::Limits::default());
        assert!(d.required_features.contains(wgpu::Features::all_experimental_mask()));
        assert!(d.experimental_features.is_enabled(), "experimental features required but not enabled");
        assert!(!d.required_features.contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS));

        let plain = wgpu::Features::all() - wgpu::Features::all_experimental_mask();
        let every_stable = shared_device_descriptor(plain, wgpu::Limits::default());
        let d = shared_device_descriptor(plain, wgpu::Limits::default());
        assert!(!d.experimental_features.is_enabled());
        assert_eq!(d.required_features, plain - wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);

        // On a real adapter (lavapipe on CI): the descriptor from its own features and
        // limits gives a device; one asking for features it lacks is refused with a
        // reason, which is what the window then shows when it falls back to the CPU.
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster_block(instance.enumerate_adapters(wgpu::Backends::all()));
        let adapter = adapters.first().expect("a wgpu adapter (lavapipe on CI)");
        let own = shared_device_descriptor(adapter.features(), adapter.limits());
        assert_eq!(try_device(adapter, &own), Ok(()));
        assert!(!adapter.features().contains(every_stable.required_features), "an adapter with every feature?");
        let why = try_device(adapter, &every_stable).expect_err("features the adapter lacks");
        assert!(!why.is_empty());
    }
}
