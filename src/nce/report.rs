//! What a trained NCE model is measured by, at the end of `nce` and in `eval`: c, the
//! importance-sampled log Z with q as the proposal, and -log p(x) on the validation images with
//! c and with that log Z, beside the noise's own -log q(x) on the same images.
use std::collections::HashMap;

use anyhow::{bail, Result};

use super::gpu::{GpuNce, Scored};
use super::{log_mean_exp, LogEstimate};
use crate::gpu::{Gpu, Kernels};
use crate::mixture::Family;

pub struct Report {
    pub c: f64,
    /// log E_q[exp(l(x)) / q(x)]: 0 if NCE self-normalised (then log Z = c).
    pub est: LogEstimate,
    pub draws: usize,
    /// Validation images, and the standard error of the per-image mean of -log p(x).
    pub images: usize,
    pub nll_stderr: f64,
    /// -log p(x) per image taking log Z = c, and with the estimated log Z.
    pub nll_c: f64,
    pub nll_z: f64,
    /// -log q(x) per image: the noise mixture alone.
    pub nll_q: f64,
}

/// Measures `nce` at its current weights: `draws` draws of q for log Z, then every validation
/// image. Also returns the images as scored, for the best and worst grids.
pub fn measure(nce: &GpuNce, (gpu, kernels): (&Gpu, &Kernels), draws: usize) -> Result<(Report, Scored)> {
    let c = nce.scorer.c(&nce.read_params(gpu)?) as f64;
    let ratios = nce.noise_log_ratios((gpu, kernels), draws)?;
    let est = log_mean_exp(&ratios);
    if !(est.value.is_finite() && est.stderr.is_finite()) {
        bail!("the log Z estimate is not finite (the scorer's outputs on q's draws overflowed)");
    }
    let scored = nce.score_validation(gpu)?;
    let n = scored.log_p.len() as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n;
    let nll_c = -mean(&scored.log_p);
    let var = scored.log_p.iter().map(|&l| (l + nll_c).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let report = Report {
        c,
        est,
        draws: ratios.len(),
        images: scored.log_p.len(),
        nll_stderr: (var / n).sqrt(),
        nll_c,
        nll_z: nll_c + est.value,
        nll_q: -mean(&scored.log_q),
    };
    Ok((report, scored))
}

impl Report {
    /// The report's lines; `train_seconds` when it ends a training run.
    pub fn print(&self, family: Family, train_seconds: Option<f64>, seconds: f64) {
        let log_z = self.c + self.est.value;
        println!(
            "c = {:.4}; log Z = {log_z:.4} +- {:.4} (importance sampling, {} draws of q, ESS {:.1}): \
             log Z - c = {:+.4}",
            self.c, self.est.stderr, self.draws, self.est.ess, self.est.value
        );
        let what = if family == Family::Bernoulli { "binarized validation images" } else { "validation images" };
        let timing = match train_seconds {
            Some(t) => format!("{t:.1} s training, {seconds:.1} s in all"),
            None => format!("{seconds:.1} s"),
        };
        println!(
            "-log p(x) on {} {what}: {:.3} nats with c, {:.3} +- {:.3} with the estimated log Z; the noise \
             alone {:.3} ({timing})",
            self.images, self.nll_c, self.nll_z, self.nll_stderr, self.nll_q
        );
    }

    pub fn metadata(&self, data: &str, epochs: usize) -> HashMap<String, String> {
        HashMap::from([
            ("data".to_string(), data.to_string()),
            ("epochs".to_string(), epochs.to_string()),
            ("c".to_string(), self.c.to_string()),
            ("log_z".to_string(), (self.c + self.est.value).to_string()),
            ("log_z_stderr".to_string(), self.est.stderr.to_string()),
            ("val_nll_with_c".to_string(), self.nll_c.to_string()),
            ("val_nll_with_log_z".to_string(), self.nll_z.to_string()),
            ("val_nll_of_noise".to_string(), self.nll_q.to_string()),
        ])
    }
}
