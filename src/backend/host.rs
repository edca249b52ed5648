//! Tensors in host memory, and moving them to and from a device.

use burn::tensor::{Device, Tensor, TensorData};

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
    let shape = t.dims().to_vec();
    let data = t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    HostTensor::new(shape, data)
}
