//! The `vidi` binary: the CLI, and (with no subcommand) the desktop app.

mod cli;
mod cli_share;
mod cli_train;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let Some(command) = args.command else {
        // The desktop app lands here; until then, teach.
        use clap::CommandFactory;
        let _ = cli::Cli::command().print_help();
        return std::process::ExitCode::SUCCESS;
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
