//! `vidi completions` and `vidi man`: generated from the clap command, which
//! the dispatch passes in.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

/// `vidi completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `vidi man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Folder for the pages (created).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn completions(a: CompletionsArgs, mut cmd: clap::Command) -> Result<()> {
    // Into memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "vidi", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script).and_then(|()| out.flush()).context("cannot write the output")
}

pub fn man(a: ManArgs, cmd: clap::Command) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut pages = vec![];
    write_man(cmd, "vidi", &a.out, &mut pages)?;
    for p in pages {
        println!("{}", p.display());
    }
    Ok(())
}

/// Writes `name.1` for `cmd` and `name-sub.1` for each visible subcommand, recursively.
fn write_man(cmd: clap::Command, name: &str, out: &Path, pages: &mut Vec<PathBuf>) -> Result<()> {
    let cmd = cmd.name(name.to_string()).bin_name(name.replace('-', " "));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        write_man(sub.clone(), &format!("{name}-{}", sub.get_name()), out, pages)?;
    }
    let path = out.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    vidi::util::write_atomic(&path, &buf).with_context(|| format!("writing {}", path.display()))?;
    pages.push(path);
    Ok(())
}
