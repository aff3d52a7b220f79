//! nce.safetensors: the scorer's layers (score.<i>.weight and .bias, nn.Linear's layout, the last
//! bias being -c) and the noise mixture it was trained against (noise.log_weights, noise.means,
//! noise.variances), so that the file alone is enough to score images and re-estimate log Z.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{Base, Scorer};
use crate::data::ImageShape;
use crate::mixture::{Family, Mixture, Spec};
use crate::tensor_file::{self, TensorFile};

pub const FILE: &str = "nce.safetensors";
pub const KIND: &str = "wgvae nce";

/// A trained NCE model as the file holds it.
pub struct NceModel {
    pub scorer: Scorer,
    pub params: Vec<f32>,
    pub noise: Mixture,
    /// k, noise draws per data point in training.
    pub noise_samples: usize,
    pub shape: ImageShape,
    /// What training ended with, from the metadata.
    pub summary: HashMap<String, String>,
}

pub fn save(path: &Path, model: &NceModel) -> Result<()> {
    let (m, s) = (&model.noise, model.shape);
    let image = vec![m.spec.components, s.channels, s.height, s.width];
    let mut tensors: Vec<tensor_file::Named> = model
        .scorer
        .tensors()
        .into_iter()
        .map(|t| {
            let values = &model.params[t.at..t.at + t.len()];
            (t.name, t.shape, values)
        })
        .collect();
    tensors.push(("noise.log_weights".into(), vec![m.spec.components], &m.log_weights));
    tensors.push(("noise.means".into(), image.clone(), &m.means));
    if m.spec.family == Family::Gaussian {
        tensors.push(("noise.variances".into(), image, &m.variances));
    }
    let hidden: Vec<usize> = model.scorer.layers[..model.scorer.layers.len() - 1].iter().map(|l| l.n_out).collect();
    let mut metadata = model.summary.clone();
    metadata.extend([
        ("kind".to_string(), KIND.to_string()),
        ("hidden".to_string(), serde_json::to_string(&hidden)?),
        ("base".to_string(), model.scorer.base.name().to_string()),
        ("shape".to_string(), serde_json::to_string(&s)?),
        ("noise_family".to_string(), m.spec.family.name().to_string()),
        ("noise_pseudo_count".to_string(), m.spec.pseudo_count.to_string()),
        ("noise_var_floor".to_string(), m.spec.var_floor.to_string()),
        ("noise_samples".to_string(), model.noise_samples.to_string()),
    ]);
    tensor_file::write(path, &tensors, metadata)
}

/// An NCE file, or a run directory holding one.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let file = path.join(FILE);
        if !file.is_file() {
            bail!("{}: no {FILE} in this directory", path.display());
        }
        return Ok(file);
    }
    if !path.exists() {
        bail!("{}: no such NCE file or run directory", path.display());
    }
    Ok(path.to_path_buf())
}

pub fn load(path: &Path) -> Result<NceModel> {
    let file = resolve(path)?;
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    parse(&bytes).with_context(|| format!("{}: not a usable wgvae NCE model", file.display()))
}

fn parse(bytes: &[u8]) -> Result<NceModel> {
    let f = TensorFile::parse(bytes)?;
    let kind = f.meta("kind")?;
    if kind != KIND {
        bail!("its kind is {kind:?}, not {KIND:?}");
    }
    let shape: ImageShape = serde_json::from_str(f.meta("shape")?).context("the shape entry is not valid")?;
    let hidden: Vec<usize> = serde_json::from_str(f.meta("hidden")?).context("the hidden entry is not valid")?;
    if shape.pixels() == 0 || shape.pixels() > 1 << 24 || hidden.iter().any(|&h| h == 0 || h > 1 << 16) {
        bail!("the shape {shape} or the hidden widths {hidden:?} are out of range");
    }
    let family = match f.meta("noise_family")? {
        "bernoulli" => Family::Bernoulli,
        "gaussian" => Family::Gaussian,
        other => bail!("unknown noise family {other:?}"),
    };
    let base = f.meta("base")?;
    let base = Base::parse(base).with_context(|| format!("unknown base {base:?} (noise or none)"))?;
    let scorer = Scorer::new(shape.pixels(), &hidden, base);
    let mut params = vec![0.0f32; scorer.param_count];
    let mut expected = Vec::new();
    for t in scorer.tensors() {
        params[t.at..t.at + t.len()].copy_from_slice(&f.f32s(&t.name, &t.shape)?);
        expected.push(t.name);
    }
    let k = match f.shape("noise.log_weights")?.as_slice() {
        [k] if *k > 0 => *k,
        other => bail!("noise.log_weights has shape {other:?}; it is [K], K > 0"),
    };
    let image = [k, shape.channels, shape.height, shape.width];
    let log_weights = f.f32s("noise.log_weights", &[k])?;
    let means = f.f32s("noise.means", &image)?;
    expected.extend(["noise.log_weights".to_string(), "noise.means".to_string()]);
    let variances = match family {
        Family::Gaussian => {
            expected.push("noise.variances".to_string());
            let v = f.f32s("noise.variances", &image)?;
            if v.iter().any(|&v| v <= 0.0) {
                bail!("noise.variances holds a value that is not positive");
            }
            v
        }
        Family::Bernoulli => {
            if means.iter().any(|&m| !(0.0..=1.0).contains(&m)) {
                bail!("noise.means holds a value that is not a probability");
            }
            vec![0.0; means.len()]
        }
    };
    f.only(&expected)?;
    let spec = Spec {
        components: k,
        family,
        pixels: shape.pixels(),
        pseudo_count: f.meta_parsed("noise_pseudo_count")?,
        var_floor: f.meta_parsed("noise_var_floor")?,
    };
    let noise = Mixture { spec, shape, log_weights, means, variances };
    let noise_samples = f.meta_parsed("noise_samples")?;
    Ok(NceModel { scorer, params, noise, noise_samples, shape, summary: f.metadata.clone() })
}
