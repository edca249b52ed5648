//! `vidi download model` and `vidi download dataset`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::common::{byte_bar, hub_bar, resolve_model, TimeoutArg};

/// `vidi download ...`.
#[derive(Subcommand, Debug)]
pub enum DownloadCommand {
    /// Download a model (config, processor config, weights) into the Hub cache.
    ///
    /// Example: vidi download model MCG-NJU/videomae-base-finetuned-kinetics
    Model(DownloadModelArgs),
    /// Download a dataset archive into the Hub cache and extract it.
    ///
    /// Example: vidi download dataset sayakpaul/ucf101-subset --out data
    Dataset(DownloadDatasetArgs),
}

/// `vidi download model`.
#[derive(Args, Debug)]
pub struct DownloadModelArgs {
    /// Model repo id.
    pub id: String,
    /// Branch, tag or commit.
    #[arg(long)]
    pub revision: Option<String>,
    #[command(flatten)]
    pub timeout: TimeoutArg,
}

/// `vidi download dataset`.
#[derive(Args, Debug)]
pub struct DownloadDatasetArgs {
    /// Dataset repo id.
    #[arg(default_value = vidi::hub::REFERENCE_DATASET)]
    pub id: String,
    /// The archive in the repo (.tar.gz or .tar).
    #[arg(long, default_value = vidi::hub::REFERENCE_DATASET_FILE)]
    pub file: String,
    /// Branch, tag or commit.
    #[arg(long)]
    pub revision: Option<String>,
    /// Where to extract.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Only download into the cache; do not extract.
    #[arg(long)]
    pub no_extract: bool,
    #[command(flatten)]
    pub timeout: TimeoutArg,
}

pub fn download_model(a: DownloadModelArgs) -> Result<()> {
    let dir = resolve_model(&a.id, a.revision.as_deref(), a.timeout)?;
    println!("{}", dir.display());
    Ok(())
}

pub fn download_dataset(a: DownloadDatasetArgs) -> Result<()> {
    let (pb, progress) = hub_bar("downloading");
    let opts = vidi::hub::DownloadOptions { progress: Some(progress), timeout: a.timeout.secs, ..Default::default() };
    let path = vidi::hub::download_dataset_file_opts(&a.id, &a.file, a.revision.as_deref(), &Default::default(), &opts);
    pb.finish_and_clear();
    let path = path?;
    println!("cached: {}", path.display());
    if a.no_extract {
        return Ok(());
    }
    let pb = byte_bar("extracting");
    let pb2 = pb.clone();
    let created = vidi::hub::extract_archive(&path, &a.out, &mut |done, total| {
        pb2.set_length(total);
        pb2.set_position(done);
    })
    .with_context(|| format!("extracting {}", path.display()))?;
    pb.finish_and_clear();
    for c in created {
        println!("extracted: {}", c.display());
    }
    Ok(())
}
