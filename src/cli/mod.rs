//! The command line: parses the flags (flags.rs), turns them once into a validated `RunConfig` and
//! each command's options, and runs the command. Nothing below this module sees a clap struct.
#[cfg(not(target_arch = "wasm32"))]
mod checkpoint_flags;
#[cfg(not(target_arch = "wasm32"))]
mod command;
#[cfg(not(target_arch = "wasm32"))]
mod demo_flags;
#[cfg(not(target_arch = "wasm32"))]
mod demos;
mod flags;
#[cfg(not(target_arch = "wasm32"))]
mod run;

#[cfg(not(target_arch = "wasm32"))]
pub use command::{Cli, Command};
pub use flags::{Latent, ModelArgs};
#[cfg(not(target_arch = "wasm32"))]
pub use run::run;

use anyhow::{bail, Result};
use clap::Parser;

use crate::config::{FlatConfig, RunConfig};
use crate::data::ImageShape;
use crate::gpu::DeviceChoice;
use crate::objective::Objective;
use flags::DeviceArgs;

/// Epochs of a new run when --epochs is not given.
pub const DEFAULT_EPOCHS: usize = 10;

impl ModelArgs {
    /// Width of z: the Gaussian's dimensions, or groups x categories.
    pub fn latent_width(&self) -> usize {
        match self.latent {
            Latent::Gaussian(z) => z,
            Latent::Categorical => self.groups * self.categories,
        }
    }

    /// Samples of z per input: --k for IWAE, else --mc-samples.
    pub fn samples(&self) -> usize {
        match self.objective {
            Objective::Iwae => self.k.unwrap_or(5),
            Objective::Elbo => self.mc_samples,
        }
    }

    /// The config these flags describe, validated. The data's shape and classes and its fingerprint
    /// are filled in when the data is loaded (session::open_new).
    pub fn to_config(&self, epochs: usize) -> Result<RunConfig> {
        // The flags that RunConfig folds into one field (samples) must not contradict each other.
        match self.objective {
            Objective::Iwae if self.mc_samples != 1 => {
                bail!("--objective iwae takes its samples from --k, not --mc-samples")
            }
            Objective::Elbo if self.k.is_some() => {
                bail!("--k is the number of importance samples of --objective iwae; the ELBO uses --mc-samples")
            }
            _ => {}
        }
        let categorical = self.latent == Latent::Categorical;
        // The flags as the stored form holds them; reading it refuses combinations that do not train.
        let flat = FlatConfig {
            shape: ImageShape::mnist(),
            hidden: self.hidden.clone(),
            arch: self.arch,
            conv_channels: self.conv_channels.clone(),
            norm: self.norm,
            norm_groups: self.norm_groups,
            latent: self.latent_width(),
            batch: self.batch,
            epochs,
            lr: self.lr,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-8,
            seed: self.seed,
            binarize: self.binarize,
            data: self.data.as_ref().map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())),
            dataset: self.dataset,
            image_size: self.image_size,
            color: self.color,
            skip_bad: self.skip_bad,
            data_fingerprint: String::new(),
            wgvae_version: env!("CARGO_PKG_VERSION").to_string(),
            objective: self.objective,
            estimator: self.estimator,
            baseline: self.baseline,
            samples: self.samples(),
            beta: self.beta,
            kl_warmup_epochs: self.kl_warmup,
            free_bits: self.free_bits,
            decoder: self.decoder,
            conditional: self.conditional,
            classes: 0,
            class_names: Vec::new(),
            latent_groups: if categorical { self.groups } else { 0 },
            latent_categories: if categorical { self.categories } else { 0 },
            tau_start: self.tau_start,
            tau_end: self.tau_end,
            inference: self.inference,
            inner_steps: self.inner_steps,
            inner_lr: self.inner_lr,
        };
        let config = RunConfig::try_from(flat)?;
        config.validate()?;
        Ok(config)
    }
}

impl DeviceArgs {
    fn choice(&self) -> DeviceChoice {
        DeviceChoice { backend: self.backend, adapter: self.adapter.clone(), kernels: self.kernels }
    }
}

/// Rejects sizes no command can use, naming the flag.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn check_count(flag: &str, n: usize, max: usize) -> Result<()> {
    if n == 0 || n > max {
        bail!("{flag} {n}: must be between 1 and {max}");
    }
    Ok(())
}

/// A new training run's config and device from `wgvae train`'s flags (without the command name),
/// parsed and validated as the command line does: how the web page turns its controls into a run.
/// Flags that only make sense on a file system (--out, --resume, --data) are refused.
pub fn train_config(flags: &[String]) -> Result<(RunConfig, DeviceChoice)> {
    let parsed =
        flags::TrainFlags::try_parse_from(flags).map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim()))?;
    let a = parsed.train;
    if a.resume.is_some() || a.out.is_some() || a.model.data.is_some() {
        bail!("--out, --resume and --data name files; here the run's data and files come and go as bytes");
    }
    Ok((a.model.to_config(a.epochs.unwrap_or(DEFAULT_EPOCHS))?, a.device.choice()))
}
