//! mixture.safetensors: a fitted mixture as `wgvae mixture` writes it and `wgvae nce --noise` and
//! `eval` read it: log_weights [K], means [K, C, H, W] (and variances for the Gaussian), with the
//! family, image shape, prior and result in the metadata.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{Family, Mixture, Spec};
use crate::data::{Dataset, ImageShape, Source};
use crate::tensor_file::{self, TensorFile};

pub const FILE: &str = "mixture.safetensors";
pub const KIND: &str = "wgvae mixture";

/// What a fit was, for the metadata: the data, EM iterations, train and validation log p(x).
pub struct FitSummary<'a> {
    pub data: &'a str,
    /// Where the data came from, recorded so that `eval` can load it again.
    pub source: Option<(&'a Source, &'a Dataset)>,
    pub iterations: usize,
    pub train_loglik: f64,
    pub val_loglik: f64,
}

pub fn save(path: &Path, fit: &Mixture, summary: &FitSummary) -> Result<()> {
    let s = fit.shape;
    let image = vec![fit.spec.components, s.channels, s.height, s.width];
    let mut tensors = vec![
        ("log_weights".to_string(), vec![fit.spec.components], fit.log_weights.as_slice()),
        ("means".to_string(), image.clone(), fit.means.as_slice()),
    ];
    if fit.spec.family == Family::Gaussian {
        tensors.push(("variances".to_string(), image, fit.variances.as_slice()));
    }
    let mut metadata = HashMap::from([
        ("kind".to_string(), KIND.to_string()),
        ("family".to_string(), fit.spec.family.name().to_string()),
        ("shape".to_string(), serde_json::to_string(&s)?),
        ("pseudo_count".to_string(), fit.spec.pseudo_count.to_string()),
        ("var_floor".to_string(), fit.spec.var_floor.to_string()),
        ("data".to_string(), summary.data.to_string()),
        ("iterations".to_string(), summary.iterations.to_string()),
        ("train_loglik".to_string(), summary.train_loglik.to_string()),
        ("val_loglik".to_string(), summary.val_loglik.to_string()),
    ]);
    if let Some((source, data)) = summary.source {
        metadata.extend(source.metadata(data));
    }
    tensor_file::write(path, &tensors, metadata)
}

/// A mixture file, or a run directory holding one; a VAE's run is named as such.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let file = path.join(FILE);
        if file.is_file() {
            return Ok(file);
        }
        if path.join(crate::checkpoint::CHECKPOINT_FILE).is_file() {
            bail!(
                "{}: a VAE's run (it holds a checkpoint), not a mixture: fit one with `wgvae mixture`",
                path.display()
            );
        }
        bail!("{}: no {FILE} in this directory: fit a mixture there with `wgvae mixture --out`", path.display());
    }
    if !path.exists() {
        bail!("{}: no such mixture file or run directory", path.display());
    }
    Ok(path.to_path_buf())
}

/// Reads and checks a fitted mixture.
pub fn load(path: &Path) -> Result<Mixture> {
    Ok(load_with_metadata(path)?.0)
}

/// A fitted mixture and its file's metadata (the fit's summary and its data's source).
pub fn load_with_metadata(path: &Path) -> Result<(Mixture, HashMap<String, String>)> {
    let file = resolve(path)?;
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    parse(&bytes).with_context(|| format!("{}: not a usable wgvae mixture", file.display()))
}

fn parse(bytes: &[u8]) -> Result<(Mixture, HashMap<String, String>)> {
    let f = TensorFile::parse(bytes)?;
    let kind = f.meta("kind")?;
    if kind != KIND {
        bail!("its kind is {kind:?}, not {KIND:?}");
    }
    let family = match f.meta("family")? {
        "bernoulli" => Family::Bernoulli,
        "gaussian" => Family::Gaussian,
        other => bail!("unknown family {other:?} (bernoulli or gaussian)"),
    };
    let shape: ImageShape = serde_json::from_str(f.meta("shape")?).context("the shape entry is not valid")?;
    if shape.pixels() == 0 || shape.pixels() > 1 << 24 {
        bail!("the image shape {shape} is empty or too large");
    }
    let k = match f.shape("log_weights")?.as_slice() {
        [0] => bail!("log_weights is empty: a mixture has at least one component"),
        [k] => *k,
        other => bail!("log_weights has shape {other:?}; it is [K]"),
    };
    let image = [k, shape.channels, shape.height, shape.width];
    let log_weights = f.f32s("log_weights", &[k])?;
    let means = f.f32s("means", &image)?;
    let mut expected = vec!["log_weights".to_string(), "means".to_string()];
    let variances = match family {
        Family::Gaussian => {
            expected.push("variances".to_string());
            let v = f.f32s("variances", &image)?;
            if let Some(i) = v.iter().position(|&v| v <= 0.0) {
                bail!("variances[{i}] = {} is not positive", v[i]);
            }
            v
        }
        Family::Bernoulli => {
            if let Some(i) = means.iter().position(|&m| !(0.0..=1.0).contains(&m)) {
                bail!("means[{i}] = {} is not a probability", means[i]);
            }
            vec![0.0; means.len()]
        }
    };
    f.only(&expected)?;
    if log_weights.iter().any(|&l| l > 1e-3) {
        bail!("a log weight is above 0");
    }
    let spec = Spec {
        components: k,
        family,
        pixels: shape.pixels(),
        pseudo_count: f.meta_parsed("pseudo_count")?,
        var_floor: f.meta_parsed("var_floor")?,
    };
    Ok((Mixture { spec, shape, log_weights, means, variances }, f.metadata.clone()))
}
