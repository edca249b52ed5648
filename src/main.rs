//! The `vidi` binary: the CLI, and (with no subcommand) the desktop app.

mod cli;

use clap::FromArgMatches;

/// Mesa's Vulkan device-select layer asks the Wayland compositor for the
/// default GPU whenever adapters are listed; with no `XDG_RUNTIME_DIR` (a
/// terminal over ssh, CI, a service) libwayland prints "error:
/// XDG_RUNTIME_DIR is invalid or not set in the environment." into the
/// output of every command that looks for a GPU. There it could not ask
/// anyway, and vidi orders the adapters itself (a real GPU first), so the
/// layer is turned off, unless the user steers it (`MESA_VK_DEVICE_SELECT`,
/// `DRI_PRIME`, `NODEVICE_SELECT`). Runs first, before any thread.
fn quiet_vulkan_device_select() {
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    if !set("XDG_RUNTIME_DIR") && !set("MESA_VK_DEVICE_SELECT") && !set("DRI_PRIME") && !set("NODEVICE_SELECT") {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn main() -> std::process::ExitCode {
    vidi::backend::tune_allocator();
    quiet_output_failures();
    quiet_vulkan_device_select();
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
            if e.chain().any(is_broken_pipe) {
                end_by_sigpipe();
            }
            eprintln!("error: {}", one_line(&e));
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

/// Output that cannot be written ends the command as command-line tools end:
/// a reader that went away (`vidi probe ... | head -1`) ends it quietly by
/// SIGPIPE, as if the signal had not been ignored; any other failure (a full
/// disk behind `> /dev/full`) is one `error:` line and exit status 1. Rust's
/// `println!` panics in both cases, with a backtrace hint and status 101.
fn quiet_output_failures() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let Some(stream) =
            ["stdout", "stderr"].into_iter().find(|s| msg.starts_with(&format!("failed printing to {s}")))
        else {
            return default(info);
        };
        if msg.contains("Broken pipe") {
            end_by_sigpipe();
        }
        if stream == "stdout" {
            use std::io::Write;
            let reason = msg.rsplit(": ").next().unwrap_or(msg);
            let _ = writeln!(std::io::stderr(), "error: cannot write the output: {reason}");
        }
        std::process::exit(1);
    }));
}

/// One line: the error and its causes, no backtrace; a cause its error's
/// message already ends with (`PATH: No space left on device` over the OS
/// error) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for c in e.chain() {
        let s = c.to_string();
        if msg.ends_with(&s) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&s);
    }
    msg
}

/// Whether an error is a write to a pipe whose reader went away.
fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let kind = e
        .downcast_ref::<std::io::Error>()
        .map(std::io::Error::kind)
        .or_else(|| e.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind));
    kind == Some(std::io::ErrorKind::BrokenPipe)
}

/// Ends the process as a write to a closed pipe does when SIGPIPE is not ignored.
fn end_by_sigpipe() -> ! {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition and raising the signal only ends the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(141)
}
