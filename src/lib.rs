//! vidi — fine-tune and run video classifiers on your own videos.
//!
//! The library is the engine; the `vidi` binary's CLI (and, with the `gui`
//! feature, the desktop app) are thin front ends over it.
//!
//! - [`video`]: probe files and decode chosen frames (FFmpeg).
//! - [`dataset`]: index folders of clips, split them without group leakage,
//!   sample clips and transform them exactly as PyTorchVideo and the
//!   transformers image processors do, batch and prefetch.
//! - [`hub`]: download from the Hugging Face Hub into its cache.
//! - [`model`], [`infer`], [`backend`]: the three architectures, classification, devices.
//! - [`train`], [`eval`], [`demo`]: fine-tuning, evaluation, the offline demo.
//! - [`share`]: log in to the Hub and push a model with its model card.

#[cfg(feature = "gui")]
pub mod app;
pub mod backend;
pub mod bench;
pub mod dataset;
pub mod demo;
pub mod eval;
pub mod heatmap;
pub mod hub;
pub mod infer;
pub mod live;
pub mod model;
pub mod net;
pub mod preview;
pub mod share;
pub mod timeline;
pub mod train;
pub mod util;
pub mod video;
