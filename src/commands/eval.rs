//! The `eval` command: the negative ELBO of a checkpoint on the validation split (or another
//! folder's test split) and the importance-sampled estimate of -log p(x) at each K and proposal,
//! with standard errors and effective sample sizes; as a table, importance.csv and importance.png.
use std::time::Instant;

use anyhow::{bail, Result};

use super::eval_density;
pub use super::eval_options::EvalOptions;
use super::importance_table::{self, mean_and_se, Row};
use crate::gpu::faults::GpuResult;
use crate::gpu::Launcher;
use crate::importance::{ImportanceResult, ImportanceSampler, Proposal, Sampling};
use crate::refine::{RefineSettings, Refiner};
use crate::session::{self, CheckpointSource};

pub struct RefineOptions {
    pub from: CheckpointSource,
    /// Adam steps on each input's (mu, logvar), at learning rate `lr`.
    pub steps: usize,
    pub lr: f32,
    /// Draws of z per input when measuring the ELBO before and after (the same draws both times).
    pub draws: usize,
    pub max_images: Option<usize>,
}

/// The importance sampler and the refiner run unconditional Gaussian-latent models only (for
/// now); `code` names where the missing support would go.
fn unconditional_gaussian(s: &session::Session, what: &str, code: &str) -> Result<()> {
    if s.config.categorical().is_some() {
        bail!(
            "{what} needs a Gaussian latent with the prior N(0, I); this model's latents are categorical \
             (Gumbel-softmax)"
        );
    }
    if s.config.classes() > 0 {
        bail!("{what} of a conditional model is not supported yet: it needs p(z|y) and the class inputs in {code}");
    }
    Ok(())
}

/// The `refine` command: the amortization gap on the validation split.
pub fn refine(args: &RefineOptions) -> Result<()> {
    let (s, _) = session::open_checkpoint(&args.from, args.from.data.as_ref(), args.max_images)?;
    unconditional_gaussian(&s, "refine", "src/refine.rs")?;
    println!("adapter: {}", s.gpu.describe());
    let adam = crate::config::AdamConfig { lr: args.lr, ..s.config.adam() };
    // A per-datapoint model has no encoder: its q(z|x) is inferred from the prior.
    let from_prior = s.config.per_datapoint();
    if from_prior {
        println!("per-datapoint model: refining from the prior q = N(0, I), as it has no encoder");
    }
    let settings = RefineSettings {
        batch: s.config.batch,
        binarize: s.config.binarize,
        data_seed: s.config.seed,
        adam,
        from_prior,
    };
    let l = Launcher { gpu: &s.gpu, kernels: &s.kernels };
    let refiner = Refiner::new(l, (&s.trainer.model, s.trainer.params()), s.trainer.val_images(), settings);
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(s.data.val.len() as u64);
    let t = refiner.run(&s.gpu, args.steps, args.draws, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let per = |t: &crate::gpu::params::LossTotals| {
        let n = t.examples.max(1.0) as f64;
        ((t.rec_sum + t.kl_sum) as f64 / n, t.rec_sum as f64 / n, t.kl_sum as f64 / n)
    };
    let (before, br, bk) = per(&t.before);
    let (after, ar, ak) = per(&t.after);
    println!(
        "{} validation images, ELBO from {} draws of z each, {} Adam steps (lr {}) per input, {:.1} s",
        s.data.val.len(),
        args.draws,
        args.steps,
        args.lr,
        started.elapsed().as_secs_f64()
    );
    println!(
        "negative ELBO, {}  {before:9.3} nats/example  (rec {br:.3} + KL {bk:.3})",
        if from_prior { "prior q = N(0, I):    " } else { "encoder's q(z|x):     " }
    );
    println!("negative ELBO, refined per datapoint:  {after:9.3} nats/example  (rec {ar:.3} + KL {ak:.3})");
    println!(
        "{}  {:9.3} nats/example",
        if from_prior { "gained by per-image inference:       " } else { "amortization gap:                    " },
        before - after
    );
    Ok(())
}

pub async fn eval(args: &EvalOptions) -> Result<()> {
    match eval_density::kind_of(&args.from.checkpoint) {
        eval_density::Kind::Mixture => return eval_density::mixture(args),
        eval_density::Kind::Nce => return eval_density::nce(args),
        eval_density::Kind::Vae => {}
    }
    let (s, ck) = session::open_checkpoint(&args.from, args.from.data.as_ref(), args.max_images)?;
    // Without an encoder only the prior can propose (and there is no amortized ELBO to report).
    let has_encoder = !s.config.per_datapoint();
    if args.proposals.contains(&Proposal::Encoder) {
        session::require_encoder(&s, "the encoder's proposal (--proposal encoder, the default)")
            .map_err(|e| anyhow::anyhow!("{e}; --proposal prior needs none"))?;
    }
    unconditional_gaussian(&s, "the importance-sampled likelihood", "shaders/importance.wgsl")?;
    let out = args.out.clone().unwrap_or_else(|| session::beside_checkpoint(&args.from.checkpoint, ""));
    let config = ck.config.clone();
    println!("adapter: {}", s.gpu.describe());
    println!(
        "checkpoint: {} (model {}, {}); evaluating {} images of {}",
        args.from.checkpoint.display(),
        config.describe(),
        ck.progress.as_ref().map_or("no training record".into(), |p| format!("{} epochs trained", p.epochs_done)),
        s.data.val.len(),
        s.data.name
    );

    if has_encoder {
        let started = Instant::now();
        let totals = s.trainer.evaluate(&s.gpu).await?;
        let n = totals.examples.max(1.0);
        println!(
            "negative ELBO   {:10.3} nats/example  (rec {:.3} + KL {:.3}; one z per image, analytic KL)  {:.2} s",
            (totals.rec_sum + totals.kl_sum) / n,
            totals.rec_sum / n,
            totals.kl_sum / n,
            started.elapsed().as_secs_f64()
        );
    }

    let mut rows = Vec::new();
    for &proposal in &args.proposals {
        let started = Instant::now();
        let results = importance_nll(&s, &args.iw_samples, proposal, args.seed)?;
        let seconds = started.elapsed().as_secs_f64();
        for r in &results {
            let (nll, stderr) = mean_and_se(&r.nll);
            let (ess, _) = mean_and_se(&r.ess);
            rows.push(Row { proposal, k: r.k, nll, stderr, ess, seconds });
        }
    }
    importance_table::print(&rows);
    std::fs::create_dir_all(&out).map_err(|e| anyhow::anyhow!("--out {}: cannot create it ({e})", out.display()))?;
    importance_table::write(
        &out,
        &rows,
        &format!("{} on {} images of {}", config.describe(), s.data.val.len(), s.data.name),
    )?;
    println!("wrote {} and importance.png", out.join("importance.csv").display());
    Ok(())
}

/// Runs the importance sampler with `proposal` over the session's validation split with a progress
/// bar: one result per K of `ks`, ascending.
pub fn importance_nll(
    s: &session::Session,
    ks: &[usize],
    proposal: Proposal,
    seed: u32,
) -> GpuResult<Vec<ImportanceResult>> {
    let sampling = Sampling { ks, proposal, binarize: s.config.binarize, data_seed: s.config.seed, seed };
    let l = Launcher { gpu: &s.gpu, kernels: &s.kernels };
    let sampler = ImportanceSampler::new(l, (&s.trainer.model, s.trainer.params()), s.trainer.val_images(), sampling);
    let bar = indicatif::ProgressBar::new(s.data.val.len() as u64);
    let template =
        format!("importance sampling, {} proposal [{{bar:30}}] {{pos}}/{{len}} images {{eta}}", proposal.name());
    bar.set_style(indicatif::ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
    let r = sampler.run(&s.gpu, |done| bar.set_position(done as u64));
    bar.finish_and_clear();
    r
}
