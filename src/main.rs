use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wgvae::cli::Cli::parse();
    match wgvae::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
