//! The notes' other models and examples: their flags checked and turned into each command's
//! options.
use anyhow::{bail, Result};

use super::check_count;
use super::demo_flags::{MixtureArgs, NceArgs, ToyArgs};
use crate::commands::{mixture, nce, toy};

pub fn toy(a: ToyArgs) -> Result<()> {
    check_count("--samples", a.samples, 1 << 20)?;
    check_count("--steps", a.steps, 100_000)?;
    for (flag, v) in [("--a", a.a), ("--b", a.b), ("--theta", a.theta)] {
        if !(v.is_finite() && v.abs() <= 1e3) {
            bail!("{flag} {v}: must be a finite number in [-1000, 1000]");
        }
    }
    if a.a == 0.0 {
        bail!("--a 0: theta would not move the mean a theta + b, so there is nothing to optimise");
    }
    if !(a.lr.is_finite() && a.lr > 0.0 && a.lr <= 10.0) {
        bail!("--lr {}: must be a number in (0, 10]", a.lr);
    }
    toy::toy(&toy::ToyOptions {
        problem: crate::toy::Problem { a: a.a, b: a.b },
        theta: a.theta,
        samples: a.samples,
        steps: a.steps,
        lr: a.lr,
        seed: a.seed,
        out: a.out,
        device: a.device.choice(),
    })
}

pub fn mixture(a: MixtureArgs) -> Result<()> {
    check_count("--components", a.components, 65_532)?;
    check_count("--iterations", a.iterations, 100_000)?;
    if !(a.tolerance.is_finite() && a.tolerance >= 0.0) {
        bail!("--tolerance {}: must be a finite number >= 0", a.tolerance);
    }
    if !(a.pseudo_count.is_finite() && a.pseudo_count > 0.0 && a.pseudo_count <= 1e6) {
        bail!("--pseudo-count {}: must be a number in (0, 1e6]; 0 would let a component die", a.pseudo_count);
    }
    if !(a.variance_floor.is_finite() && a.variance_floor > 0.0 && a.variance_floor <= 1.0) {
        bail!("--variance-floor {}: must be a number in (0, 1]", a.variance_floor);
    }
    mixture::mixture(&mixture::MixtureOptions {
        components: a.components,
        family: a.family,
        iterations: a.iterations,
        tolerance: a.tolerance,
        pseudo_count: a.pseudo_count,
        var_floor: a.variance_floor,
        seed: a.seed,
        source: a.data.source(),
        out: a.out,
        tensorboard: !a.no_tensorboard,
        device: a.device.choice(),
    })
}

pub fn nce(a: NceArgs) -> Result<()> {
    check_count("--epochs", a.epochs, 100_000)?;
    check_count("--noise-samples", a.noise_samples, 1_000)?;
    check_count("--batch", a.batch, 65_535)?;
    check_count("--log-z-samples", a.log_z_samples, 100_000_000)?;
    if a.hidden.is_empty() || a.hidden.len() > 8 {
        bail!("--hidden: give 1 to 8 widths");
    }
    for &h in &a.hidden {
        check_count("--hidden", h, 65_536)?;
    }
    if !(a.lr.is_finite() && a.lr > 0.0 && a.lr <= 1.0) {
        bail!("--lr {}: must be a number in (0, 1]", a.lr);
    }
    nce::nce(&nce::NceOptions {
        noise: a.noise,
        epochs: a.epochs,
        noise_samples: a.noise_samples,
        hidden: a.hidden,
        base: a.base,
        batch: a.batch,
        lr: a.lr,
        log_z_samples: a.log_z_samples,
        seed: a.seed,
        source: a.data.source(),
        out: a.out,
        tensorboard: !a.no_tensorboard,
        device: a.device.choice(),
    })
}
