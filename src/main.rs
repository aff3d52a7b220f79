use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wgvae::cli::Cli::parse();
    match wgvae::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.is::<wgvae::commands::interrupt::Interrupted>() => {
            eprintln!("{e}");
            std::process::ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
