//! `hedui`: the command line of the verification hub.

mod cli;
mod commands;
mod config;
mod error;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A bug must still end in one clear line, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error{place}: {msg} (this is a bug in hedui; please report it)");
    }));
    let cli = cli::Cli::parse();
    // A server logs structured JSON lines (with request ids) at info by default.
    let serving = matches!(cli.command, cli::Command::Serve { .. });
    cli::init_logging(cli.verbose.max(u8::from(serving)), cli.log_json || serving);
    // Query execution recurses over expression trees on these threads (planning has threads of
    // its own, and statements are bounded in depth): room to spare.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(8 * 1024 * 1024)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli.command, cli.config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
