//! The commands, each taking its options (built by cli/ from the flags) and a validated config:
//! `train`, `eval` and `refine`, the picture commands, `gradvar`, `toy`, `mixture`, `nce`, `bench` and `devices`.
pub mod bench;
pub mod codes_file;
pub mod data;
pub mod devices;
pub mod encode;
mod epoch_writer;
pub mod eval;
pub mod eval_density;
mod eval_options;
pub mod gradvar;
pub mod importance_table;
pub mod interrupt;
mod latents_plot;
pub mod mixture;
pub mod nce;
pub mod pictures;
pub mod toy;
pub mod train;
mod train_control;
mod train_log;

/// A new run directory's default: runs/<stem>-<unix time>.
pub fn timestamped_run_dir(stem: &str) -> std::path::PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    std::path::PathBuf::from("runs").join(format!("{stem}-{secs}"))
}
