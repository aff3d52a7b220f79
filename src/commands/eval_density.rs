//! `eval` of the models that are not VAEs, on the validation split of the data their file records
//! (or of `--data`): a mixture's exact -log p(x), and an NCE model's with c and with an
//! importance-sampled log Z, beside its noise's -log q(x) on the same images.
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::eval_options::EvalOptions;
use crate::config::AdamConfig;
use crate::data::{Dataset, ImageShape, Source};
use crate::gpu::{Gpu, Kernels};
use crate::importance::Proposal;
use crate::nce::gpu::{GpuNce, NceSettings};
use crate::nce::Noise;
use crate::{checkpoint, mixture, nce};

/// What an `eval --checkpoint` path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Vae,
    Mixture,
    Nce,
}

/// A run directory by the file it holds, a file by its metadata's kind; anything else is taken for
/// a VAE checkpoint, whose loader says what is wrong with it.
pub fn kind_of(path: &Path) -> Kind {
    let file = if path.is_dir() {
        if path.join(checkpoint::CHECKPOINT_FILE).is_file() {
            return Kind::Vae;
        }
        match [mixture::file::FILE, nce::file::FILE].map(|f| path.join(f)).into_iter().find(|f| f.is_file()) {
            Some(file) => file,
            None => return Kind::Vae,
        }
    } else {
        path.to_path_buf()
    };
    match crate::tensor_file::kind(&file).as_deref() {
        Some(mixture::file::KIND) => Kind::Mixture,
        Some(nce::file::KIND) => Kind::Nce,
        _ => Kind::Vae,
    }
}

/// The data a file was fitted to (`--data` in its place), its validation split cut to
/// `--max-images`; its images must have the file's shape.
fn load_data(args: &EvalOptions, meta: &HashMap<String, String>, shape: ImageShape) -> Result<Dataset> {
    let path = args.from.checkpoint.display();
    let recorded = Source::from_metadata(meta).with_context(|| format!("{path}"))?;
    let (source, fingerprint) = match (&args.from.data, recorded) {
        (Some(dir), recorded) => {
            let folder = recorded.map(|(s, _)| s.folder).unwrap_or_default();
            (Source { dir: Some(dir.clone()), dataset: crate::data::Builtin::Mnist10k, folder }, None)
        }
        (None, Some((source, fingerprint))) => (source, Some(fingerprint)),
        (None, None) => bail!("{path}: the file does not record the data it was fitted to; give it with --data"),
    };
    let mut data = source.load()?;
    if fingerprint.is_some_and(|f| f != data.fingerprint()) {
        eprintln!("warning: the data at {} differs from what {path} was fitted to", data.name);
    }
    if data.shape != shape {
        bail!("{}: images are {}, but {path} was fitted to images of {shape}", data.name, data.shape);
    }
    if let Some(n) = args.max_images.filter(|&n| n < data.val.len()) {
        data.val.images.truncate(n * data.val.pixels);
        data.val.labels.truncate(n);
    }
    if data.val.is_empty() {
        bail!("{}: the evaluation split is empty", data.name);
    }
    Ok(data)
}

fn open_gpu(args: &EvalOptions) -> Result<(Gpu, Kernels)> {
    let vae_flags = args.iw_samples != [1000] || args.proposals != [Proposal::Encoder] || args.out.is_some();
    if vae_flags {
        eprintln!("note: --iw-samples, --proposal and --out are a VAE checkpoint's; this file needs none of them");
    }
    let gpu = Gpu::open(&args.from.device)?;
    let kernels = Kernels::new(&gpu);
    println!("adapter: {}", gpu.describe());
    Ok((gpu, kernels))
}

/// A mixture's exact -log p(x) = -log sum_k pi_k p(x|k) per validation image.
pub fn mixture(args: &EvalOptions) -> Result<()> {
    let (fit, meta) = mixture::file::load_with_metadata(&args.from.checkpoint)?;
    let data = load_data(args, &meta, fit.shape)?;
    let (gpu, kernels) = open_gpu(args)?;
    println!(
        "mixture: {} ({}-component {}, {} EM iterations); evaluating {} images of {}",
        args.from.checkpoint.display(),
        fit.spec.components,
        fit.spec.family.name(),
        meta.get("iterations").map_or("?", |s| s.as_str()),
        data.val.len(),
        data.name
    );
    let started = Instant::now();
    let log_p = mixture::em::log_densities((&gpu, &kernels), &fit, &data.val)?;
    let nll: Vec<f32> = log_p.iter().map(|&l| -l).collect();
    let (mean, stderr) = super::importance_table::mean_and_se(&nll);
    println!(
        "-log p(x)  {mean:10.3} +- {stderr:.3} nats/example  (exact: -log sum_k pi_k p(x|k))  {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// An NCE model's -log p(x) with c and with the importance-sampled log Z, measured as at the end
/// of its training (its seed: the same binarization of the images; log Z from fresh draws of q).
pub fn nce(args: &EvalOptions) -> Result<()> {
    let model = nce::file::load(&args.from.checkpoint)?;
    let data = load_data(args, &model.summary, model.shape)?;
    let (gpu, kernels) = open_gpu(args)?;
    let family = model.noise.spec.family;
    println!(
        "NCE model: {} (scorer {}, {}-component {} noise, k = {}); evaluating {} images of {}",
        args.from.checkpoint.display(),
        model.scorer.describe(),
        model.noise.spec.components,
        family.name(),
        model.noise_samples,
        data.val.len(),
        data.name
    );
    let started = Instant::now();
    let seed = match model.summary.get("seed") {
        Some(s) => s.parse().with_context(|| format!("{}: its seed entry is not a number", model.summary["seed"]))?,
        None => args.seed,
    };
    let adam = AdamConfig { lr: 0.0, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let settings = NceSettings { batch: data.val.len().min(128), noise: model.noise_samples, adam, seed };
    let noise = Noise::new(&model.noise);
    let splits = (&data.val, &data.val);
    let gpu_nce = GpuNce::new((&gpu, &kernels), (model.scorer.clone(), noise, settings), splits, &model.params)?;
    let (report, _) = nce::report::measure(&gpu_nce, (&gpu, &kernels), args.log_z_samples)?;
    report.print(family, None, started.elapsed().as_secs_f64());
    Ok(())
}
