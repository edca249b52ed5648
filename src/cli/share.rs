//! `vidi login`, `vidi logout`, `vidi whoami`, `vidi push`.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::common::{hub_bar, print_json};

/// `vidi login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Read the token from standard input instead of prompting (for scripts).
    #[arg(long)]
    pub token_stdin: bool,
}

/// `vidi push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// A model folder in the transformers layout (e.g. RUN/best). From a run, the model
    /// card gets the training configuration, the metrics and the confusion matrix.
    pub model_dir: PathBuf,
    /// The Hub repo, USER/NAME or ORG/NAME (created if missing).
    #[arg(long)]
    pub repo: String,
    /// Create the repo private.
    #[arg(long)]
    pub private: bool,
    /// Branch to commit to (default: main).
    #[arg(long)]
    pub revision: Option<String>,
    /// Commit message.
    #[arg(long)]
    pub message: Option<String>,
    /// Print the push report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn login(a: LoginArgs) -> Result<()> {
    let token = if a.token_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    } else {
        eprintln!("Paste a token from https://huggingface.co/settings/tokens (write access to push).");
        rpassword::prompt_password("Token (not shown): ")?
    };
    if token.trim().is_empty() {
        bail!("no token given");
    }
    let (user, path) = vidi::share::login(&token)?;
    println!("logged in as {user}; token saved to {}", path.display());
    if std::env::var("HF_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
        eprintln!("note: HF_TOKEN is set in the environment and is used instead of the saved token");
    }
    Ok(())
}

pub fn logout() -> Result<()> {
    if vidi::share::logout()? {
        println!("logged out: removed {}", vidi::share::token_path().display());
    } else {
        println!("no saved token at {}", vidi::share::token_path().display());
    }
    if std::env::var("HF_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
        eprintln!("note: HF_TOKEN is still set in the environment");
    }
    Ok(())
}

pub fn whoami() -> Result<()> {
    println!("{}", vidi::share::whoami()?);
    Ok(())
}

pub fn push(a: PushArgs) -> Result<()> {
    let opts =
        vidi::share::PushOptions { private: a.private, revision: a.revision.clone(), message: a.message.clone() };
    let (pb, progress) = hub_bar("uploading");
    let report = vidi::share::push(&a.model_dir, &a.repo, &opts, Some(progress));
    pb.finish_and_clear();
    let report = report?;
    if a.json {
        return print_json(&report);
    }
    println!("pushed {} to {}", report.files.join(", "), report.url);
    println!("use it: vidi classify --model {} clip.mp4", report.repo);
    Ok(())
}
