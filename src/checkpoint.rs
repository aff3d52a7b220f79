//! Checkpoints as safetensors files.
//!
//! Tensor names follow pytorch/examples' VAE state_dict, weights [out, in] as nn.Linear:
//!   one hidden layer (the default 784-400-20): fc1 (encoder), fc21 (mean head), fc22 (log-variance
//!   head), fc3 and fc4 (decoder), each `.weight` and `.bias`;
//!   deeper nets: encoder.{i} for the encoder's hidden layers, the heads fc21 and fc22 as above,
//!   and decoder.{i} for the decoder's layers in order (the last gives the logits);
//!   categorical latents replace fc21 / fc22 by one layer of logits, fc2 (encoder.{L} when deeper);
//!   a conditional model adds prior.weight [2 latent, class block] and prior.bias (p(z|y)), and its
//!   first encoder and decoder layers take the one-hot class block as extra input columns.
//!
//! A run directory holds two files, each replaced atomically (temp file, fsync, rename):
//!   checkpoint.safetensors: the model, Adam's moments (optimizer.exp_avg.<name>,
//!     optimizer.exp_avg_sq.<name>) and, in the metadata, the config and the progress (epoch, step,
//!     loss totals of an unfinished epoch, RNG position, per-epoch metrics). `train --resume` reads it.
//!   model.safetensors: the model tensors alone, so that
//!     `model.load_state_dict(safetensors.torch.load_file("model.safetensors"))` works unchanged.
//! Both carry the config, so either serves `eval`, `sample` and the other picture commands.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::files::write_atomic;
use crate::gpu::params::LossTotals;
use crate::model::Model;
pub use crate::network::TensorSlot;

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const MODEL_FILE: &str = "model.safetensors";
const CONFIG_KEY: &str = "wgvae.config";
const PROGRESS_KEY: &str = "wgvae.progress";

/// One epoch's line of metrics.csv.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_rec: f32,
    pub train_kl: f32,
    pub val_loss: f32,
    pub val_rec: f32,
    pub val_kl: f32,
    pub seconds: f64,
    pub images_per_second: f64,
}

impl EpochMetrics {
    /// An epoch's line from its training and validation loss totals, the seconds it trained and
    /// the images it trained on; an error when the validation loss is not finite.
    pub fn from_totals(
        epoch: usize,
        train: &LossTotals,
        val: &LossTotals,
        seconds: f64,
        images: usize,
    ) -> Result<Self> {
        let ((train_loss, train_rec, train_kl), (val_loss, val_rec, val_kl)) = (train.means(), val.means());
        if !val_loss.is_finite() {
            bail!("validation loss is not finite after epoch {epoch} (train loss {train_loss}); try a lower --lr");
        }
        Ok(EpochMetrics {
            epoch,
            train_loss,
            train_rec,
            train_kl,
            val_loss,
            val_rec,
            val_kl,
            seconds,
            images_per_second: images as f64 / seconds.max(1e-9),
        })
    }
}

/// Where the random streams stand. Every draw is counter-based, so this position is all that is
/// needed to continue them: eps and binarization are Philox4x32-10 keyed by (seed, stream) with
/// counters (element, batch cursor, optimizer step); the epoch's shuffle is StdRng seeded by
/// (seed << 32) ^ epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RngPosition {
    pub generator: String,
    pub seed: u32,
    pub optimizer_step: u32,
    pub epoch: usize,
    pub cursor: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs finished (validated, pictured, checkpointed).
    pub epochs_done: usize,
    /// Steps already taken in epoch epochs_done + 1 (non-zero after an interruption).
    pub step_in_epoch: usize,
    /// Adam steps taken in all.
    pub optimizer_step: u32,
    /// The unfinished epoch's loss totals (rec_sum, kl_sum, examples) as f32 bit patterns, exact.
    pub totals_bits: [u32; 3],
    /// The score estimator's running-mean baseline [mean, initialised], as f32 bit patterns.
    #[serde(default)]
    pub baseline_bits: [u32; 2],
    pub rng: RngPosition,
    pub history: Vec<EpochMetrics>,
}

/// The model's tensors, in state_dict order, with their names (see the module comment).
pub fn tensor_slots(model: &Model) -> Vec<TensorSlot> {
    let z = model.arch.latent;
    let linear = |name: String, l: &crate::network::Layer| l.tensors(&name);
    // Layers before the encoder's heads: the MLP's hidden layers, or the conv VAE's convolutions.
    let (front, conv) = match &model.arch.conv {
        Some(channels) => (channels.len(), true),
        None => (model.arch.hidden.len(), false),
    };
    let front_name = |i: usize| match (conv, front) {
        (true, _) => format!("enc.{i}"),
        (false, 1) => "fc1".to_string(),
        (false, _) => format!("encoder.{i}"),
    };
    let mut slots = Vec::new();
    for (i, l) in model.encoder[..front].iter().enumerate() {
        slots.extend(linear(front_name(i), l));
    }
    // The encoder's last layer [2Z, n_in] is fc21 (rows 0..Z) stacked on fc22 (rows Z..2Z); for
    // categorical latents it is one layer of logits, fc2 (encoder.{hidden} in deeper MLPs).
    let heads = &model.encoder[front];
    if model.arch.categorical.is_some() {
        slots.extend(linear(if conv || front == 1 { "fc2".to_string() } else { format!("encoder.{front}") }, heads));
    } else {
        for (k, name) in ["fc21", "fc22"].iter().enumerate() {
            let slot = |name: String, at, shape| TensorSlot { name, at, shape };
            slots.push(slot(format!("{name}.weight"), heads.weight_at + k * z * heads.n_in, vec![z, heads.n_in]));
            slots.push(slot(format!("{name}.bias"), heads.bias_at + k * z, vec![z]));
        }
    }
    for (i, l) in model.decoder.iter().enumerate() {
        let name = match (conv, front, i) {
            (true, _, 0) => "fc3".to_string(),
            (true, _, i) => format!("dec.{}", i - 1),
            (false, 1, i) => ["fc3", "fc4"][i].to_string(),
            (false, _, i) => format!("decoder.{i}"),
        };
        slots.extend(linear(name, l));
    }
    if let Some(prior) = &model.prior {
        slots.extend(linear("prior".to_string(), prior));
    }
    slots
}

/// What a checkpoint holds, host-side.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub config: RunConfig,
    /// Flat parameter buffer (model.rs layout, padding 0).
    pub params: Vec<f32>,
    /// Adam's moments in the same layout; absent in model.safetensors.
    pub adam: Option<(Vec<f32>, Vec<f32>)>,
    pub progress: Option<Progress>,
    /// Per-datapoint inference: the table of variational parameters [training images, 2 latent]
    /// and its Adam moments (checkpoint.safetensors only).
    pub table: Option<[Vec<f32>; 3]>,
}

/// Tensor names of the per-datapoint table and its moments.
pub const TABLE_NAMES: [&str; 3] =
    ["posterior.mulv", "optimizer.exp_avg.posterior.mulv", "optimizer.exp_avg_sq.posterior.mulv"];

fn f32_bytes(values: &[f32]) -> &[u8] {
    bytemuck::cast_slice(values)
}

/// Serializes the checkpoint; `with_training_state` adds Adam's moments and the progress.
pub fn to_bytes(ck: &Checkpoint, model: &Model, with_training_state: bool) -> Result<Vec<u8>> {
    let slots = tensor_slots(model);
    let mut tensors: Vec<(String, TensorView)> = Vec::new();
    fn view<'a>(values: &'a [f32], s: &TensorSlot) -> Result<TensorView<'a>> {
        TensorView::new(Dtype::F32, s.shape.clone(), f32_bytes(&values[s.at..s.at + s.len()]))
            .context("building a tensor view")
    }
    for s in &slots {
        tensors.push((s.name.clone(), view(&ck.params, s)?));
    }
    let mut metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (CONFIG_KEY.to_string(), serde_json::to_string(&ck.config)?),
    ]);
    if with_training_state {
        if let Some((m, v)) = &ck.adam {
            for s in &slots {
                tensors.push((format!("optimizer.exp_avg.{}", s.name), view(m, s)?));
                tensors.push((format!("optimizer.exp_avg_sq.{}", s.name), view(v, s)?));
            }
        }
        if let Some(p) = &ck.progress {
            metadata.insert(PROGRESS_KEY.to_string(), serde_json::to_string(p)?);
        }
        if let Some(table) = &ck.table {
            let rows = table[0].len() / (2 * model.arch.latent);
            for (name, values) in TABLE_NAMES.iter().zip(table) {
                tensors.push((
                    name.to_string(),
                    TensorView::new(Dtype::F32, vec![rows, 2 * model.arch.latent], f32_bytes(values))
                        .context("building a tensor view")?,
                ));
            }
        }
    }
    let bytes = safetensors::serialize(tensors, Some(metadata)).context("serializing safetensors")?;
    sorted_header(bytes)
}

/// The same file with its JSON header's keys sorted (the safetensors crate writes its metadata
/// from a HashMap, whose order changes from run to run), so that the same run writes the same
/// bytes. Sorting keeps every key and value, so the header keeps its length and the data its place.
pub(crate) fn sorted_header(mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    use std::collections::BTreeMap;
    let len = u64::from_le_bytes(bytes[..8].try_into().context("safetensors header length")?) as usize;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).context("reading back the safetensors header")?;
    let sorted: BTreeMap<&String, serde_json::Value> = header
        .iter()
        .map(|(k, v)| {
            let v = match v.as_object() {
                Some(o) => serde_json::to_value(o.iter().collect::<BTreeMap<_, _>>()).unwrap_or(v.clone()),
                None => v.clone(),
            };
            (k, v)
        })
        .collect();
    let mut json = serde_json::to_vec(&sorted).context("writing the safetensors header")?;
    anyhow::ensure!(json.len() <= len, "the sorted safetensors header grew");
    json.resize(len, b' '); // the crate pads the header with spaces to its alignment
    bytes[8..8 + len].copy_from_slice(&json);
    Ok(bytes)
}

/// Writes checkpoint.safetensors and model.safetensors into `dir`.
pub fn save(dir: &Path, ck: &Checkpoint, model: &Model) -> Result<()> {
    write_atomic(&dir.join(CHECKPOINT_FILE), &to_bytes(ck, model, true)?)?;
    write_atomic(&dir.join(MODEL_FILE), &to_bytes(ck, model, false)?)
}

/// A checkpoint file, or a run directory holding checkpoint.safetensors.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let file = path.join(CHECKPOINT_FILE);
        if !file.is_file() {
            bail!(
                "{}: no {CHECKPOINT_FILE} in this directory (was the run started, and has it finished an epoch \
                   or been interrupted?)",
                path.display()
            );
        }
        return Ok(file);
    }
    if !path.exists() {
        bail!("{}: no such checkpoint file or run directory", path.display());
    }
    Ok(path.to_path_buf())
}

/// Reads and checks a checkpoint: the config must parse and make sense, and every tensor the
/// config's architecture needs must be there with its shape, F32 and finite.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let file = resolve(path)?;
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    from_bytes(&bytes).with_context(|| format!("{}: not a usable wgvae checkpoint", file.display()))
}

/// A checkpoint from a safetensors file's bytes, checked as `load` says.
pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("not a valid safetensors file ({e})"))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| anyhow::anyhow!("unreadable header ({e})"))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let config_json = metadata
        .get(CONFIG_KEY)
        .with_context(|| format!("the metadata has no {CONFIG_KEY} entry (not written by wgvae?)"))?;
    let config: RunConfig =
        serde_json::from_str(config_json).with_context(|| format!("the {CONFIG_KEY} entry is not a valid config"))?;
    let mut config = config;
    // Checkpoints from before the `conditional` field: a class count meant a conditional model.
    config.conditional |= config.classes > 0;
    config.validate().context("the config in this checkpoint is not one wgvae can run")?;
    let progress = match metadata.get(PROGRESS_KEY) {
        Some(p) => Some(
            serde_json::from_str::<Progress>(p).with_context(|| format!("the {PROGRESS_KEY} entry is not valid"))?,
        ),
        None => None,
    };
    let model = Model::new(config.architecture());
    // Every parameter comes from the file: a config that needs more than it holds is refused
    // before anything is allocated from the config's sizes.
    if model.param_count.saturating_mul(4) > bytes.len() {
        bail!(
            "the config's architecture {} has {} parameters, more than this {}-byte file can hold",
            config.describe(),
            model.param_count,
            bytes.len()
        );
    }
    let slots = tensor_slots(&model);
    let arch = config.describe();
    let read_into = |name: &str, s: &TensorSlot, out: &mut [f32]| -> Result<()> {
        let t = st
            .tensor(name)
            .map_err(|_| anyhow::anyhow!("tensor {name} is missing, but the config's architecture {arch} needs it"))?;
        if t.dtype() != Dtype::F32 {
            bail!("tensor {name} is {:?}; wgvae stores F32", t.dtype());
        }
        if t.shape() != s.shape.as_slice() {
            bail!("tensor {name} has shape {:?}, but the config's architecture {arch} needs {:?}", t.shape(), s.shape);
        }
        let dst = &mut out[s.at..s.at + s.len()];
        for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
            *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        if let Some(i) = dst.iter().position(|v| !v.is_finite()) {
            bail!("tensor {name} holds a non-finite value ({}) at flat index {i}", dst[i]);
        }
        Ok(())
    };
    let mut params = vec![0.0f32; model.param_count];
    for s in &slots {
        read_into(&s.name, s, &mut params)?;
    }
    let mut expected: std::collections::HashSet<String> = slots
        .iter()
        .flat_map(|s| {
            [s.name.clone(), format!("optimizer.exp_avg.{}", s.name), format!("optimizer.exp_avg_sq.{}", s.name)]
        })
        .collect();
    if config.inference == crate::objective::Inference::PerDatapoint {
        expected.extend(TABLE_NAMES.iter().map(|n| n.to_string()));
    }
    if let Some(extra) = st.names().into_iter().find(|n| !expected.contains(*n)) {
        bail!("tensor {extra} does not belong to the config's architecture {arch}");
    }
    let adam = if st.names().iter().any(|n| n.starts_with("optimizer.")) {
        let mut m = vec![0.0f32; model.param_count];
        let mut v = vec![0.0f32; model.param_count];
        for s in &slots {
            read_into(&format!("optimizer.exp_avg.{}", s.name), s, &mut m)?;
            read_into(&format!("optimizer.exp_avg_sq.{}", s.name), s, &mut v)?;
        }
        Some((m, v))
    } else {
        None
    };
    let table = if st.names().contains(&TABLE_NAMES[0]) {
        let read = |name: &str| -> Result<Vec<f32>> {
            let t = st.tensor(name).map_err(|_| anyhow::anyhow!("tensor {name} is missing"))?;
            if t.dtype() != Dtype::F32 || t.shape().len() != 2 || t.shape()[1] != 2 * config.latent {
                bail!(
                    "tensor {name} has shape {:?}; the per-datapoint table is [images, {}]",
                    t.shape(),
                    2 * config.latent
                );
            }
            Ok(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        };
        Some([read(TABLE_NAMES[0])?, read(TABLE_NAMES[1])?, read(TABLE_NAMES[2])?])
    } else {
        None
    };
    Ok(Checkpoint { config, params, adam, progress, table })
}
