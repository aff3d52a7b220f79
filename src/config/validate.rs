//! The ranges of a config's values, each refused with the flag that sets it. (Combinations that
//! cannot train cannot be written down: spec.rs.)
use anyhow::{bail, Result};

use super::spec::{Bound, ConvSpec, Estimator, Method, Network};
use super::{in_unit_interval, RunConfig, MAX_CLASSES, MAX_EPOCHS, MAX_HIDDEN, MAX_LATENT, MAX_ROWS, MAX_SAMPLES};
use crate::objective::Baseline;

impl RunConfig {
    /// Rejects values no run can use, naming the flag that sets each.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.epochs > MAX_EPOCHS {
            bail!("--epochs {}: must be between 1 and {MAX_EPOCHS}", self.epochs);
        }
        if self.batch == 0 || self.batch > MAX_ROWS {
            bail!("--batch {}: must be between 1 and {MAX_ROWS}", self.batch);
        }
        let o = self.optimizer;
        in_unit_interval("--lr", o.lr)?;
        if !((0.0..1.0).contains(&o.beta1) && (0.0..1.0).contains(&o.beta2) && o.eps.is_finite() && o.eps > 0.0) {
            bail!("Adam's betas ({}, {}) and eps {} are out of range", o.beta1, o.beta2, o.eps);
        }
        let s = self.shape;
        if s.channels == 0 || s.height == 0 || s.width == 0 || !s.pixels().is_multiple_of(4) || s.pixels() > 1 << 20 {
            bail!("images of {s}: wgvae needs 1 to 2^20 values per image, a multiple of 4");
        }
        match &self.model.network {
            Network::Mlp { hidden } => check_hidden(hidden)?,
            Network::Conv(conv) => check_conv(conv, true)?,
            Network::Auto { hidden, conv } => {
                check_hidden(hidden)?;
                check_conv(conv, false)?;
            }
        }
        if let Some((h, w)) = self.image_size.filter(|&(h, w)| h == 0 || w == 0 || h > 4096 || w > 4096) {
            bail!("--image-size {h}x{w}: each side must be between 1 and 4096");
        }
        self.check_method()
    }

    fn check_method(&self) -> Result<()> {
        match &self.method {
            &Method::Categorical { groups, categories, tau, .. } => {
                if groups == 0 || categories < 2 || groups * categories > MAX_LATENT {
                    bail!(
                        "--groups {groups} --categories {categories}: need at least 1 group of at least 2 categories, \
                         at most {MAX_LATENT} in all"
                    );
                }
                let tau_ok = |t: f32| t.is_finite() && (0.01..=100.0).contains(&t);
                if !(tau_ok(tau.0) && tau_ok(tau.1)) {
                    bail!("--tau-start {} --tau-end {}: temperatures must lie in [0.01, 100]", tau.0, tau.1);
                }
            }
            method => {
                let latent = method.latent_width();
                if latent == 0 || latent > MAX_LATENT {
                    bail!("--latent {latent}: must be between 1 and {MAX_LATENT}");
                }
            }
        }
        let (samples, flag) = (self.method.samples(), self.method.samples_flag());
        if samples == 0 || samples > MAX_SAMPLES {
            bail!("{flag} {samples}: must be between 1 and {MAX_SAMPLES}");
        }
        if self.batch * samples > MAX_ROWS {
            bail!("--batch {} x {samples} samples per input: at most {MAX_ROWS} rows", self.batch);
        }
        let kl = self.method.kl();
        if !(kl.beta.is_finite() && (0.0..=1000.0).contains(&kl.beta)) {
            bail!("--beta {}: must be a number in [0, 1000]", kl.beta);
        }
        if kl.warmup_epochs > MAX_EPOCHS {
            bail!("--kl-warmup {}: at most {MAX_EPOCHS} epochs", kl.warmup_epochs);
        }
        match self.method {
            Method::Gaussian { bound: Bound::Elbo { estimator: Estimator::Reparam { free_bits }, .. }, .. }
                if !(free_bits.is_finite() && (0.0..=100.0).contains(&free_bits)) =>
            {
                bail!("--free-bits {free_bits}: must be a number of nats in [0, 100]")
            }
            Method::Gaussian {
                bound: Bound::Elbo { estimator: Estimator::Score { baseline: Baseline::Loo }, .. },
                ..
            } if samples < 2 => {
                bail!("--baseline loo needs --mc-samples 2 or more (each sample's baseline is the others' mean)")
            }
            Method::Conditional { classes, .. } if classes > MAX_CLASSES => {
                bail!("{classes} classes: a conditional model (--conditional) knows 1 to {MAX_CLASSES}")
            }
            Method::PerDatapoint { inner_steps, inner_lr, .. } => {
                if inner_steps > 100 {
                    bail!("--inner-steps {inner_steps}: at most 100");
                }
                in_unit_interval("--inner-lr", inner_lr)
            }
            _ => Ok(()),
        }
    }
}

fn check_hidden(hidden: &[usize]) -> Result<()> {
    if let Some(bad) = hidden.iter().find(|&&h| h == 0 || h > MAX_HIDDEN) {
        bail!("--hidden {bad}: each width must be between 1 and {MAX_HIDDEN}");
    }
    if hidden.is_empty() {
        bail!("--hidden: at least one hidden layer");
    }
    Ok(())
}

/// The conv widths (`chosen`: the run is a conv VAE, not one that auto may make one).
fn check_conv(conv: &ConvSpec, chosen: bool) -> Result<()> {
    if chosen && (conv.channels.is_empty() || conv.channels.len() > 6) {
        bail!("--conv-channels: 1 to 6 widths, got {}", conv.channels.len());
    }
    if let Some(bad) = conv.channels.iter().find(|&&c| chosen && (c == 0 || c > 1024)) {
        bail!("--conv-channels {bad}: each width must be between 1 and 1024");
    }
    if let Some(groups) = conv.group_norm {
        if let Some(bad) = conv.channels.iter().find(|&&c| groups == 0 || c % groups != 0) {
            bail!("--norm-groups {groups}: must divide every --conv-channels width, and {bad} is not a multiple");
        }
    }
    Ok(())
}
