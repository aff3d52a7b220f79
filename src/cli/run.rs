//! Runs a parsed command line: each command's flags become its options, checked once here.
use anyhow::{bail, Result};

use super::checkpoint_flags::{CheckpointArgs, EncodeArgs, EvalArgs, RefineArgs, SampleArgs};
use super::command::{Cli, Command};
use super::flags::{BenchArgs, DataArgs, GradvarArgs, TrainArgs};
use super::{check_count, demos, DEFAULT_EPOCHS};
use crate::commands::{self, bench, encode, eval, gradvar, pictures, train};
use crate::config::in_unit_interval;
use crate::data::FolderOptions;
use crate::session::CheckpointSource;

impl CheckpointArgs {
    fn source(&self) -> CheckpointSource {
        CheckpointSource { checkpoint: self.checkpoint.clone(), data: self.data.clone(), device: self.device.choice() }
    }
}

/// Runs the command; the one place the command line waits on the GPU's futures.
pub fn run(cli: Cli) -> Result<()> {
    pollster::block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train(a).await,
        Command::Eval(a) => eval(a).await,
        Command::Sample(a) => sample(a).await,
        Command::Reconstruct(a) => {
            check_count("--n", a.n, 1_000)?;
            pictures::reconstruct(&pictures::ReconstructOptions { from: a.from.source(), n: a.n, out: a.out }).await
        }
        Command::Interpolate(a) => {
            check_count("--frames", a.frames, 100)?;
            pictures::interpolate(&pictures::InterpolateOptions {
                from: a.from.source(),
                start: a.start,
                end: a.end,
                frames: a.frames,
                out: a.out,
            })
            .await
        }
        Command::Manifold(a) => {
            check_count("--n", a.n, 100)?;
            pictures::manifold(&pictures::ManifoldOptions { from: a.from.source(), n: a.n, out: a.out }).await
        }
        Command::Encode(a) => encode(a).await,
        Command::Refine(a) => refine(a),
        Command::Gradvar(a) => gradvar(a),
        Command::Bench(a) => bench(a),
        Command::Toy(a) => demos::toy(a),
        Command::Mixture(a) => demos::mixture(a),
        Command::Nce(a) => demos::nce(a),
        Command::Devices(a) => commands::devices::devices(&commands::devices::DevicesOptions {
            backend: a.device.backend,
            plan: a.plan,
            profile: a.profile,
            config: a.model.to_config(1)?,
            device: a.device.choice(),
        }),
        Command::Data(a) => data(a),
    }
}

/// A new run's config from the flags, or --resume's directory (its checkpoint brings the config).
async fn train(a: TrainArgs) -> Result<()> {
    // With --resume the checkpoint brings its config; clap refuses model flags beside it.
    let new = match a.resume {
        Some(_) => {
            if let Some(e) = a.epochs {
                check_count("--epochs", e, crate::config::MAX_EPOCHS)?;
            }
            None
        }
        None => Some(a.model.to_config(a.epochs.unwrap_or(DEFAULT_EPOCHS))?),
    };
    train::train(&train::TrainOptions {
        new,
        resume: a.resume,
        epochs: a.epochs,
        out: a.out,
        init: a.init,
        interrupt_after_steps: a.interrupt_after_steps,
        tensorboard: !a.no_tensorboard,
        inject_fault_after_steps: a.inject_fault_after_steps,
        device: a.device.choice(),
    })
    .await
}

async fn eval(a: EvalArgs) -> Result<()> {
    for &k in &a.iw_samples {
        check_count("--iw-samples", k, 1_000_000)?;
    }
    if a.iw_samples.len() > 32 {
        bail!("--iw-samples: {} values given, at most 32", a.iw_samples.len());
    }
    if let Some(n) = a.max_images {
        check_count("--max-images", n, usize::MAX)?;
    }
    check_count("--log-z-samples", a.log_z_samples, 100_000_000)?;
    let mut proposals = a.proposal.clone();
    proposals.dedup();
    let opts = eval::EvalOptions {
        from: a.from.source(),
        iw_samples: a.iw_samples,
        proposals,
        out: a.out,
        max_images: a.max_images,
        seed: a.seed,
        log_z_samples: a.log_z_samples,
    };
    eval::eval(&opts).await
}

async fn sample(a: SampleArgs) -> Result<()> {
    check_count("--n", a.n, 10_000)?;
    check_count("--cols", a.cols, 1_000)?;
    if !(a.temperature.is_finite() && a.temperature > 0.0 && a.temperature <= 100.0) {
        bail!("--temperature {}: must be a number in (0, 100]", a.temperature);
    }
    pictures::sample(&pictures::SampleOptions {
        from: a.from.source(),
        n: a.n,
        seed: a.seed,
        temperature: a.temperature,
        class: a.class,
        cols: a.cols,
        out: a.out,
    })
    .await
}

fn refine(a: RefineArgs) -> Result<()> {
    check_count("--steps", a.steps, 100_000)?;
    check_count("--draws", a.draws, 10_000)?;
    if let Some(n) = a.max_images {
        check_count("--max-images", n, usize::MAX)?;
    }
    in_unit_interval("--lr", a.lr)?;
    eval::refine(&eval::RefineOptions {
        from: a.from.source(),
        steps: a.steps,
        lr: a.lr,
        draws: a.draws,
        max_images: a.max_images,
    })
}

fn gradvar(a: GradvarArgs) -> Result<()> {
    check_count("--repeats", a.repeats, 100_000)?;
    check_count("--samples", a.samples, 1024)?;
    if a.repeats < 2 {
        bail!("--repeats {}: a variance needs at least 2 draws", a.repeats);
    }
    gradvar::gradvar(&gradvar::GradvarOptions {
        config: a.model.to_config(1)?,
        checkpoint: a.checkpoint,
        repeats: a.repeats,
        samples: a.samples,
        out: a.out,
        device: a.device.choice(),
    })
}

fn bench(a: BenchArgs) -> Result<()> {
    if a.steps == 0 || a.kernel_reps == 0 {
        bail!("--steps and --kernel-reps must be at least 1");
    }
    bench::bench(&bench::BenchOptions {
        config: a.model.to_config(1)?,
        steps: a.steps,
        kernel_reps: a.kernel_reps,
        each: a.each_launch,
        sweep_batch: a.sweep_batch,
        sweep_hidden: a.sweep_hidden,
        json: a.json,
        device: a.device.choice(),
    })
}

fn data(a: DataArgs) -> Result<()> {
    check_count("--n", a.n, 1_000)?;
    let folder = FolderOptions { size: a.image_size, color: a.color, skip_bad: a.skip_bad };
    commands::data::data(&commands::data::DataOptions {
        dir: a.dir,
        dataset: a.dataset,
        folder,
        n: a.n,
        out: a.out.unwrap_or_else(|| "data.png".into()),
    })
}

async fn encode(a: EncodeArgs) -> Result<()> {
    if let Some(n) = a.max_images {
        check_count("--max-images", n, usize::MAX)?;
    }
    let opts = encode::EncodeOptions { from: a.from.source(), split: a.split, max_images: a.max_images, out: a.out };
    encode::encode(&opts).await
}
