//! The picture commands on a checkpoint: `sample`, `reconstruct`, `interpolate` and `manifold`.
use anyhow::{bail, Result};

use std::path::PathBuf;

use crate::draws::{categorical_prior_codes, manifold_latents, prior_latents};
use crate::gpu::faults::GpuResult;
use crate::images::write_grid;
use crate::images::write_reconstructions;
use crate::session::{beside_checkpoint, open_checkpoint, require_encoder, CheckpointSource};

pub struct SampleOptions {
    pub from: CheckpointSource,
    pub n: usize,
    /// Seed of the prior draws.
    pub seed: u32,
    /// Scales the prior's standard deviation.
    pub temperature: f32,
    /// For a conditional model: samples of this class only, a number or a name (else a row of
    /// `cols` per class).
    pub class: Option<String>,
    /// Images per row.
    pub cols: usize,
    pub out: Option<PathBuf>,
}

pub struct ReconstructOptions {
    pub from: CheckpointSource,
    /// Validation images, spread evenly over the split.
    pub n: usize,
    pub out: Option<PathBuf>,
}

pub struct InterpolateOptions {
    pub from: CheckpointSource,
    /// Validation indices where the paths start and end (empty: eight default pairs).
    pub start: Vec<usize>,
    pub end: Vec<usize>,
    /// Decoded frames per path, the two ends included.
    pub frames: usize,
    pub out: Option<PathBuf>,
}

pub struct ManifoldOptions {
    pub from: CheckpointSource,
    /// Images per side of the grid.
    pub n: usize,
    pub out: Option<PathBuf>,
}

/// --class: a class number, or one of the model's class names.
fn class_index(config: &crate::config::RunConfig, class: &str, checkpoint: &std::path::Path) -> Result<usize> {
    let classes = config.classes();
    if classes == 0 {
        bail!("--class {class}: {} is not a conditional model (train with --conditional)", checkpoint.display());
    }
    if let Some(i) = config.class_names().iter().position(|n| n == class) {
        return Ok(i);
    }
    match class.parse::<usize>() {
        Ok(c) if c < classes => Ok(c),
        _ => {
            let names = if config.class_names().is_empty() {
                String::new()
            } else {
                format!(" ({})", config.class_names().join(", "))
            };
            bail!("--class {class}: the model knows classes 0 to {}{names}", classes - 1)
        }
    }
}

pub async fn sample(args: &SampleOptions) -> Result<()> {
    let (s, _) = open_checkpoint(&args.from, args.from.data.as_ref(), None)?;
    let out = args.out.clone().unwrap_or_else(|| beside_checkpoint(&args.from.checkpoint, "sample.png"));
    let classes = s.config.classes();
    let class = args.class.as_deref().map(|c| class_index(&s.config, c, &args.from.checkpoint)).transpose()?;
    if classes > 0 && class.is_none() {
        // One row of --cols samples per class.
        let images = class_grid(&s.trainer, &s.gpu, args.cols, args.seed, args.temperature).await?;
        write_grid(&out, &images, args.cols * classes, s.data.shape, args.cols)?;
        println!(
            "wrote {} ({classes} rows, one per class, of {} samples from p(z|y), temperature {})",
            out.display(),
            args.cols,
            args.temperature
        );
        return Ok(());
    }
    let z: Vec<f32> = if let Some((groups, categories)) = s.config.categorical() {
        // Categorical latents: one-hot codes, each group's category uniform (no temperature).
        categorical_prior_codes(args.n, groups, categories, args.seed)
    } else {
        prior_latents(args.n, s.config.latent_width(), args.seed).iter().map(|v| v * args.temperature).collect()
    };
    let images = match class {
        Some(c) => {
            let (z, labels) = class_latents(&s.trainer, &s.gpu, &vec![c as u32; args.n], &z).await?;
            s.trainer.decode(&s.gpu, &z, &labels).await?
        }
        None => s.trainer.decode(&s.gpu, &z, &[]).await?,
    };
    write_grid(&out, &images, args.n, s.data.shape, args.cols)?;
    println!(
        "wrote {} ({} prior samples{}, temperature {})",
        out.display(),
        args.n,
        args.class.as_ref().map_or(String::new(), |c| format!(" of class {c}")),
        args.temperature
    );
    Ok(())
}

/// Draws from a conditional model's prior: z = mu_p(y) + sigma_p(y) eps for each label, given
/// standard normal eps [n, latent] (already scaled by any temperature). Returns (z, labels).
pub async fn class_latents(
    trainer: &crate::trainer::GpuTrainer,
    gpu: &crate::gpu::Gpu,
    labels: &[u32],
    eps: &[f32],
) -> GpuResult<(Vec<f32>, Vec<u32>)> {
    let prior = trainer.model.prior.expect("a conditional model has a prior layer");
    let (latent, cb) = (trainer.model.arch.latent, trainer.model.arch.class_block());
    let params = trainer.read_params(gpu).await?;
    // [mu | logvar] = W onehot(y) + b: column y of W [2 latent, cb] plus b.
    let out = |j: usize, y: u32| params[prior.weight_at + j * cb + y as usize] + params[prior.bias_at + j];
    let z = labels
        .iter()
        .enumerate()
        .flat_map(|(i, &y)| (0..latent).map(move |j| (i, y, j)))
        .map(|(i, y, j)| out(j, y) + (0.5 * out(latent + j, y)).exp() * eps[i * latent + j])
        .collect();
    Ok((z, labels.to_vec()))
}

/// A conditional model's grid: `cols` samples from p(z|y) for each class y, a row per class.
pub async fn class_grid(
    trainer: &crate::trainer::GpuTrainer,
    gpu: &crate::gpu::Gpu,
    cols: usize,
    seed: u32,
    temperature: f32,
) -> GpuResult<Vec<f32>> {
    let classes = trainer.model.arch.classes;
    let eps: Vec<f32> =
        prior_latents(cols * classes, trainer.model.arch.latent, seed).iter().map(|v| v * temperature).collect();
    let labels: Vec<u32> = (0..classes * cols).map(|i| (i / cols) as u32).collect();
    let (z, labels) = class_latents(trainer, gpu, &labels, &eps).await?;
    trainer.decode(gpu, &z, &labels).await
}

pub async fn reconstruct(args: &ReconstructOptions) -> Result<()> {
    let (s, _) = open_checkpoint(&args.from, args.from.data.as_ref(), None)?;
    require_encoder(&s, "reconstruct")?;
    let n = args.n.min(s.data.val.len());
    let picks: Vec<u32> = (0..n).map(|i| (i * s.data.val.len() / n) as u32).collect();
    let (x, probs) = s.trainer.reconstruct(&s.gpu, &picks).await?;
    let out = args.out.clone().unwrap_or_else(|| beside_checkpoint(&args.from.checkpoint, "reconstruct.png"));
    write_reconstructions(&out, &x, &probs, n, s.data.shape)?;
    println!("wrote {} (rows of 8 validation inputs, each above its reconstructions)", out.display());
    Ok(())
}

pub async fn interpolate(args: &InterpolateOptions) -> Result<()> {
    let (s, _) = open_checkpoint(&args.from, args.from.data.as_ref(), None)?;
    require_encoder(&s, "interpolate")?;
    let val = &s.data.val;
    let (start, end) = if args.start.is_empty() && args.end.is_empty() {
        let n = val.len();
        ((0..8).map(|i| i * 100 % n).collect(), (0..8).map(|i| (950 - 100 * i) % n).collect())
    } else {
        (args.start.clone(), args.end.clone())
    };
    if start.len() != end.len() {
        bail!("--start has {} indices but --end has {}; give one end per start", start.len(), end.len());
    }
    if let Some(&bad) = start.iter().chain(&end).find(|&&i| i >= val.len()) {
        bail!("index {bad} is out of range: the validation split of {} has {} images", s.data.name, val.len());
    }
    let latent = s.config.latent_width();
    let picks: Vec<u32> = start.iter().chain(&end).map(|&i| i as u32).collect();
    let encoded = s.trainer.encode(&s.gpu, &picks).await?;
    // The path's ends: q's means, or for categorical latents q's probabilities (softmax per group).
    let ends: Vec<f32> = if let Some((_, categories)) = s.config.categorical() {
        encoded
            .chunks(categories)
            .flat_map(|l| {
                let m = l.iter().cloned().fold(f32::MIN, f32::max);
                let total: f32 = l.iter().map(|v| (v - m).exp()).sum();
                l.iter().map(move |v| (v - m).exp() / total)
            })
            .collect()
    } else {
        encoded.chunks(2 * latent).flat_map(|row| row[..latent].to_vec()).collect()
    };
    let mu = |row: usize| &ends[row * latent..(row + 1) * latent];
    let pairs = start.len();
    let frames = args.frames.max(2);
    let mut z = Vec::with_capacity(pairs * frames * latent);
    for p in 0..pairs {
        for f in 0..frames {
            let t = f as f32 / (frames - 1) as f32;
            z.extend(mu(p).iter().zip(mu(pairs + p)).map(|(a, b)| (1.0 - t) * a + t * b));
        }
    }
    // A conditional model decodes each path with its start image's class.
    let labels: Vec<u32> = if s.config.classes() > 0 {
        start.iter().flat_map(|&i| std::iter::repeat_n(val.labels[i] as u32, frames)).collect()
    } else {
        Vec::new()
    };
    let decoded = s.trainer.decode(&s.gpu, &z, &labels).await?;
    let pixels = val.pixels;
    let input = |i: usize| val.image(i).iter().map(|&v| v as f32 / 255.0);
    let mut grid = Vec::with_capacity(pairs * (frames + 2) * pixels);
    for p in 0..pairs {
        grid.extend(input(start[p]));
        grid.extend_from_slice(&decoded[p * frames * pixels..(p + 1) * frames * pixels]);
        grid.extend(input(end[p]));
    }
    let out = args.out.clone().unwrap_or_else(|| beside_checkpoint(&args.from.checkpoint, "interpolate.png"));
    write_grid(&out, &grid, pairs * (frames + 2), s.data.shape, frames + 2)?;
    println!(
        "wrote {} ({pairs} rows: input, {frames} frames decoded from the path between the two posterior means, input)",
        out.display()
    );
    Ok(())
}

pub async fn manifold(args: &ManifoldOptions) -> Result<()> {
    let (s, _) = open_checkpoint(&args.from, args.from.data.as_ref(), None)?;
    if s.config.classes() > 0 || s.config.categorical().is_some() {
        bail!(
            "{}: manifold draws the 2-D Gaussian latent space of an unconditional model; this model is {}",
            args.from.checkpoint.display(),
            if s.config.classes() > 0 { "conditional" } else { "categorical" }
        );
    }
    if s.config.latent_width() != 2 {
        bail!(
            "{}: the model has a {}-D latent; manifold needs a 2-D one (train with --latent 2)",
            args.from.checkpoint.display(),
            s.config.latent_width()
        );
    }
    let n = args.n;
    // Quantiles (i + 1) / (n + 1) of the prior in each coordinate; the top row is the largest z2.
    let z = manifold_latents(n);
    let images = s.trainer.decode(&s.gpu, &z, &[]).await?;
    let out = args.out.clone().unwrap_or_else(|| beside_checkpoint(&args.from.checkpoint, "manifold.png"));
    write_grid(&out, &images, n * n, s.data.shape, n)?;
    println!("wrote {} ({n} x {n} decoded latents at the prior's quantiles)", out.display());
    Ok(())
}
