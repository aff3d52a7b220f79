//! Command-line interface: flags (their doc comments are the --help text), checked once into
//! the settings the rest of the program uses.
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use crate::data::Builtin;
use crate::gpu::Backend;
use crate::reference::kernels::Binarize;

#[derive(Parser, Debug)]
#[command(name = "wgvae", version, about = "Train variational autoencoders on any GPU with WGSL compute shaders")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a VAE; writes sample grids, reconstructions and metrics.csv into the run directory.
    Train(TrainArgs),
    /// Measure training speed (images/s, seconds per epoch, time per kernel) on the adapter.
    Bench(BenchArgs),
    /// List the GPU adapters wgpu can use.
    Devices(DeviceArgs),
}

#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Graphics API to use [default: all that are available].
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Use the adapter whose name contains this text (case-insensitive); see `wgvae devices`.
    #[arg(long)]
    pub adapter: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Examples per optimizer step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f32,
    /// Latent dimensions.
    #[arg(long, default_value_t = 20)]
    pub latent: usize,
    /// Hidden layer widths, encoder order (the decoder mirrors them), e.g. --hidden 512 256.
    #[arg(long, num_args = 1.., default_values_t = vec![400])]
    pub hidden: Vec<usize>,
    /// Seed for initialisation, shuffling and every random draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    /// How grey levels become decoder targets.
    #[arg(long, value_enum, default_value_t = Binarize::None)]
    pub binarize: Binarize,
    /// Folder of IDX files: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], and
    /// optionally t10k-* (then used for validation; otherwise every tenth training image is).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Built-in dataset, when --data is not given.
    #[arg(long, value_enum, default_value_t = Builtin::Mnist10k)]
    pub dataset: Builtin,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Passes over the training split.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Run directory for images and metrics [default: runs/<dataset>-<unix time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Timed training steps (after 5 warm-up steps).
    #[arg(long, default_value_t = 40)]
    pub steps: usize,
    /// Repetitions of each kernel when timing kernels one by one.
    #[arg(long, default_value_t = 10)]
    pub kernel_reps: usize,
    #[command(flatten)]
    pub model: ModelArgs,
}

impl ModelArgs {
    /// Rejects values no run can use, naming the flag.
    pub fn check(&self) -> Result<()> {
        if self.batch == 0 || self.batch > 65_536 {
            bail!("--batch {}: must be between 1 and 65536", self.batch);
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            bail!("--lr {}: must be a number in (0, 1]", self.lr);
        }
        if self.latent == 0 || self.latent > 4096 {
            bail!("--latent {}: must be between 1 and 4096", self.latent);
        }
        if let Some(bad) = self.hidden.iter().find(|&&h| h == 0 || h > 16_384) {
            bail!("--hidden {bad}: each width must be between 1 and 16384");
        }
        Ok(())
    }
}

impl TrainArgs {
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 || self.epochs > 100_000 {
            bail!("--epochs {}: must be between 1 and 100000", self.epochs);
        }
        self.model.check()
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => {
            args.check()?;
            crate::train::train(&args)
        }
        Command::Bench(args) => {
            args.model.check()?;
            if args.steps == 0 || args.kernel_reps == 0 {
                bail!("--steps and --kernel-reps must be at least 1");
            }
            crate::bench::bench(&args)
        }
        Command::Devices(args) => {
            let adapters = crate::gpu::list_adapters(args.backend);
            if adapters.is_empty() {
                bail!("{}", crate::gpu::context::NO_ADAPTER_HINT);
            }
            for a in adapters {
                println!("{}\t{:?}\t{:?}\tdriver: {} {}", a.name, a.backend, a.device_type, a.driver, a.driver_info);
            }
            Ok(())
        }
    }
}
