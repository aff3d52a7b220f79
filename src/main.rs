use clap::Parser;
use wgvae::commands::interrupt;
use wgvae::gpu::faults;

fn main() -> std::process::ExitCode {
    let cli = wgvae::cli::Cli::parse();
    if matches!(cli.command, wgvae::cli::Command::Train(_)) {
        // Ctrl-C stops a run after a checkpoint (interrupt.rs); other commands stop at once.
        let handler = || {
            if !interrupt::ctrl_c() {
                std::process::exit(130);
            }
        };
        ctrlc::set_handler(handler).ok();
    }
    match wgvae::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.is::<interrupt::Interrupted>() => {
            eprintln!("{e}");
            std::process::ExitCode::from(130)
        }
        // The GPU failed (faults.rs): its own status, so scripts can tell it from bad input.
        Err(e) if faults::find(&e).is_some() => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(faults::GPU_FAILURE_EXIT)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
