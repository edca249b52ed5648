//! The `vidi` binary: the CLI, and (with no subcommand) the desktop app.

mod cli;

use clap::FromArgMatches;

fn main() -> std::process::ExitCode {
    vidi::backend::tune_allocator();
    let args = match cli::Cli::from_arg_matches(&cli::command().get_matches()) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    let Some(command) = args.command else {
        return open_app(args.files);
    };
    match cli::run(command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, no backtrace.
            let msg = e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ");
            eprintln!("error: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "gui")]
fn open_app(files: Vec<std::path::PathBuf>) -> std::process::ExitCode {
    match vidi::app::run(files) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot open the window: {e} (the command line works without one: vidi --help)");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "gui"))]
fn open_app(files: Vec<std::path::PathBuf>) -> std::process::ExitCode {
    // Built without the desktop app: teach the command line instead.
    if !files.is_empty() {
        eprintln!(
            "error: this vidi was built without the desktop app; classify with: vidi classify --model MODEL FILE..."
        );
        return std::process::ExitCode::FAILURE;
    }
    let _ = cli::command().print_help();
    std::process::ExitCode::SUCCESS
}
