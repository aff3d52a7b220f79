//! The commands, each taking its options (built by cli/ from the flags) and a validated config:
//! `train`, `eval` and `refine`, the picture commands, `gradvar`, `toy`, `mixture`, `nce`, `bench` and `devices`.
pub mod bench;
pub mod data;
mod epoch_writer;
pub mod eval;
pub mod eval_density;
pub mod gradvar;
pub mod importance_table;
pub mod interrupt;
pub mod mixture;
pub mod nce;
pub mod pictures;
pub mod toy;
pub mod train;

use anyhow::{bail, Result};

use crate::gpu::{self, Backend};

/// A new run directory's default: runs/<stem>-<unix time>.
pub fn timestamped_run_dir(stem: &str) -> std::path::PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    std::path::PathBuf::from("runs").join(format!("{stem}-{secs}"))
}

/// The adapters wgpu can use, one per line.
pub fn devices(backend: Option<Backend>) -> Result<()> {
    let adapters = gpu::list_adapters(backend);
    if adapters.is_empty() {
        bail!("{}", gpu::context::NO_ADAPTER_HINT);
    }
    for a in adapters {
        println!("{}\t{:?}\t{:?}\tdriver: {} {}", a.name, a.backend, a.device_type, a.driver, a.driver_info);
    }
    Ok(())
}
