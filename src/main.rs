//! The `vidi` binary: the CLI, and (with no subcommand) the desktop app.

mod cli;
mod cli_share;
mod cli_train;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let Some(command) = args.command else {
        return open_app();
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
fn open_app() -> std::process::ExitCode {
    match vidi::app::run(Vec::new()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot open the window: {e} (the command line works without one: vidi --help)");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "gui"))]
fn open_app() -> std::process::ExitCode {
    // Built without the desktop app: teach the command line instead.
    use clap::CommandFactory;
    let _ = cli::Cli::command().print_help();
    std::process::ExitCode::SUCCESS
}
