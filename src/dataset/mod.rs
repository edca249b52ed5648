//! Datasets: folders of clips -> labelled samples -> transformed, batched tensors.
//!
//! - [`index`]: index a folder (split or flat layout), report problems.
//! - [`annotations`]: split lists and annotation files (UCF101, HMDB51,
//!   mmaction2, CSV with segments, Kinetics, Something-Something v2);
//!   [`lists`] reads each format.
//! - [`split`]: group-aware split of a flat folder.
//! - [`sampler`]: which frames make a clip (PyTorchVideo clip samplers).
//! - [`transforms`]: PyTorchVideo / torchvision / transformers transforms.
//! - [`presets`]: the guide's train and val pipelines and the checkpoint processor.
//! - [`loader`]: batches of (B, T, C, H, W) f32 decoded on worker threads.

pub mod annotations;
pub mod index;
pub mod lists;
pub mod loader;
pub mod presets;
pub mod sampler;
pub mod split;
pub mod transforms;

use std::path::PathBuf;

pub use annotations::{index_source, AnnotationError, DataSource};
pub use index::{index_folder, DatasetIndex, IndexOptions, Layout, Sample};
pub use loader::{Batch, Loader, LoaderOptions};
pub use presets::{Preset, TrainPreset, ValPreset};
pub use sampler::{ClipSampler, ClipWindow, Segment};
pub use split::{split_annotations, split_folder, SplitOptions, SplitReport};
pub use transforms::{Clip, ImageProcessor, TransformError};

/// What went wrong with a dataset folder.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The folder does not exist.
    #[error("{path}: no such folder")]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// A file where a folder was expected.
    #[error("{path}: not a folder")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// No video files in the folder's class folders.
    #[error("{path}: no videos found (expected <folder>/<Class>/*.mp4 or <folder>/{{train,val,test}}/<Class>/*.mp4)")]
    Empty {
        /// The folder.
        path: PathBuf,
    },
    /// Split ratios out of range.
    #[error("bad split ratios: val {val} + test {test} must each be in [0, 1) and sum below 1")]
    BadRatios {
        /// Validation share.
        val: f64,
        /// Test share.
        test: f64,
    },
    /// Asked to split a folder that already has train/val/test.
    #[error("{path}: already split into train/val/test; nothing to do")]
    AlreadySplit {
        /// The folder.
        path: PathBuf,
    },
    /// The split's output folder has files in it.
    #[error("{path}: the output folder is not empty; choose a new folder (nothing was written)")]
    OutputNotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// The split's output folder lies inside the source folder.
    #[error("{path}: the output folder must not be inside the source folder")]
    OutputInsideSource {
        /// The folder.
        path: PathBuf,
    },
    /// A bad annotation or list file.
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
    /// A file system error.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
