//! Tensors in host memory, and moving them to and from a device. Every read
//! of a device tensor back to the host goes through here ([`to_host`],
//! [`Scalar::value`], [`Scalar::values`]), and those off the CPU are counted
//! ([`device_reads`]): each one waits for the device's queued work.

use std::cell::Cell;

use burn::tensor::{Device, Tensor, TensorData};

use super::ops::{route, Route};

thread_local! {
    /// Reads of a tensor back from a device other than the CPU, by this thread.
    static DEVICE_READS: Cell<usize> = const { Cell::new(0) };
}

/// How many times this thread has read tensors back from a device other than
/// the CPU (a host round trip each: the read waits for the work queued before it).
pub fn device_reads() -> usize {
    DEVICE_READS.with(Cell::get)
}

fn count_read(device: &Device) {
    if route(device) == Route::Generic {
        DEVICE_READS.with(|n| n.set(n.get() + 1));
    }
}

/// A tensor in host memory, f32, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// A tensor from shape and data.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> HostTensor {
        HostTensor { shape, data }
    }

    /// Element count.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A host tensor on a device.
pub fn to_device<const D: usize>(t: HostTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}

/// A device tensor back on the host.
pub fn to_host<const D: usize>(t: Tensor<D>) -> HostTensor {
    count_read(&t.device());
    let shape = t.dims().to_vec();
    let data = t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    HostTensor::new(shape, data)
}

/// One number computed on a device (a loss, a gradient norm). On the CPU it
/// is read at once, which costs nothing there; elsewhere it stays on the
/// device until [`Scalar::value`] asks for it, so that the work queued before
/// it need not finish first.
#[derive(Clone)]
pub enum Scalar {
    /// Read (on the CPU).
    Host(f64),
    /// Left on its device (a one-element tensor).
    Device(Tensor<1>),
}

impl Scalar {
    /// The one-element tensor `t`: read now on the CPU, left where it is elsewhere.
    pub fn of(t: Tensor<1>) -> Scalar {
        if route(&t.device()) == Route::Generic {
            Scalar::Device(t)
        } else {
            Scalar::Host(t.into_scalar::<f32>() as f64)
        }
    }

    /// `self` added to `sum` (`self` when there is none yet).
    pub fn added_to(self, sum: Option<Scalar>) -> Scalar {
        match sum {
            Some(sum) => sum + self,
            None => self,
        }
    }

    /// The value if it is on the host already (no read).
    pub fn host_value(&self) -> Option<f64> {
        match self {
            Scalar::Host(v) => Some(*v),
            Scalar::Device(_) => None,
        }
    }

    /// The value, read from the device where it is not on the host yet.
    pub fn value(&self) -> f64 {
        Scalar::values(std::slice::from_ref(self))[0]
    }

    /// The values of several, with one read from the device for all those not on the host.
    pub fn values(all: &[Scalar]) -> Vec<f64> {
        let on_device: Vec<Tensor<1>> = all
            .iter()
            .filter_map(|s| match s {
                Scalar::Device(t) => Some(t.clone()),
                Scalar::Host(_) => None,
            })
            .collect();
        let mut read = match on_device.is_empty() {
            true => Vec::new(),
            false => to_host(Tensor::cat(on_device, 0)).data,
        }
        .into_iter();
        all.iter()
            .map(|s| match s {
                Scalar::Host(v) => *v,
                // A failed read (a lost device) shows as NaN, as a diverged loss would.
                Scalar::Device(_) => read.next().map_or(f64::NAN, |v| v as f64),
            })
            .collect()
    }
}

impl std::ops::Add for Scalar {
    type Output = Scalar;
    /// The sum, on the device where both are there (no read).
    fn add(self, other: Scalar) -> Scalar {
        match (self, other) {
            (Scalar::Device(a), Scalar::Device(b)) => Scalar::Device(a + b),
            (a, b) => Scalar::Host(a.value() + b.value()),
        }
    }
}
