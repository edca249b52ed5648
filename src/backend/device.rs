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
#[derive(Debug, thiserror::Error)]
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
