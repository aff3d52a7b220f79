//! Reading checkpoints: the config must parse and make sense, and every tensor the config's
//! architecture needs must be there with its shape, F32 and finite; nothing else may be.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::{Dtype, SafeTensors};

use super::{tensor_slots, Checkpoint, Progress, TensorSlot, CHECKPOINT_FILE, CONFIG_KEY, PROGRESS_KEY, TABLE_NAMES};
use crate::config::RunConfig;
use crate::model::Model;

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
    parse(&file, &read_bytes(&file)?)
}

/// `file`'s bytes as a checkpoint (from_bytes), the errors naming the file.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    from_bytes(bytes).with_context(|| format!("{}: not a usable wgvae checkpoint", file.display()))
}

/// A safetensors file's bytes; a PyTorch pickle (.pt, .pth: a zip or a bare pickle, which can run
/// code when loaded) is refused with the command that converts it.
pub fn read_bytes(file: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    // safetensors: an 8-byte header length, then the JSON header (0x7b, its opening brace).
    let safetensors = bytes.get(8) == Some(&0x7b);
    let pickle = ["pt", "pth", "bin", "ckpt"].contains(&ext.as_str())
        || bytes.starts_with(b"PK\x03\x04")
        || bytes.first() == Some(&0x80);
    if pickle && !safetensors {
        let (from, to) = (file.display(), file.with_extension("safetensors").display().to_string());
        bail!(
            "{from}: a PyTorch pickle file, which wgvae does not load (unpickling can run code). Convert it to \
             safetensors with: python3 -c \"import torch, safetensors.torch as s; \
             s.save_file(torch.load('{from}', map_location='cpu'), '{to}')\""
        );
    }
    Ok(bytes)
}

/// A checkpoint from a safetensors file's bytes, checked as `load` says.
pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("not a valid safetensors file ({e})"))?;
    let (config, progress) = read_metadata(bytes)?;
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
    let tensors = Tensors { st: &st, arch: config.describe(), slots: &slots, len: model.param_count };
    let params = tensors.read("")?;
    tensors.refuse_others(config.per_datapoint())?;
    let adam = match st.names().iter().any(|n| n.starts_with("optimizer.")) {
        true => Some((tensors.read("optimizer.exp_avg.")?, tensors.read("optimizer.exp_avg_sq.")?)),
        false => None,
    };
    let table = match st.names().contains(&TABLE_NAMES[0]) {
        true => Some([
            read_table(&st, TABLE_NAMES[0], &config)?,
            read_table(&st, TABLE_NAMES[1], &config)?,
            read_table(&st, TABLE_NAMES[2], &config)?,
        ]),
        false => None,
    };
    Ok(Checkpoint { config, params, adam, progress, table })
}

/// The weights of `path` (a wgvae checkpoint or a PyTorch state dict, checkpoint/state_dict.rs)
/// for the model `config` describes, for `train --init`: every tensor the model needs, with its
/// shape, F32 and finite; a state dict may hold no other tensor.
pub fn weights_for(path: &Path, config: &RunConfig) -> Result<Vec<f32>> {
    let file = resolve(path)?;
    let bytes = read_bytes(&file)?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a valid safetensors file ({e})", file.display()))?;
    let model = Model::new(config.architecture());
    let slots = tensor_slots(&model);
    let arch = format!("{} (the model the flags describe)", config.describe());
    let tensors = Tensors { st: &st, arch, slots: &slots, len: model.param_count };
    let read = || -> Result<Vec<f32>> {
        let params = tensors.read("")?;
        if super::is_state_dict(&bytes) {
            tensors.refuse_others(false)?;
        }
        Ok(params)
    };
    read().with_context(|| format!("--init {}", file.display()))
}

/// The config (checked) and the progress, if any, from the file's metadata.
fn read_metadata(bytes: &[u8]) -> Result<(RunConfig, Option<Progress>)> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| anyhow::anyhow!("unreadable header ({e})"))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let config_json = metadata
        .get(CONFIG_KEY)
        .with_context(|| format!("the metadata has no {CONFIG_KEY} entry (not written by wgvae?)"))?;
    // Through the flat form checkpoints store (config/flat.rs): what older ones lack has defaults.
    let config: RunConfig =
        serde_json::from_str(config_json).with_context(|| format!("the {CONFIG_KEY} entry is not a valid config"))?;
    config.validate().context("the config in this checkpoint is not one wgvae can run")?;
    let progress = match metadata.get(PROGRESS_KEY) {
        Some(p) => Some(
            serde_json::from_str::<Progress>(p).with_context(|| format!("the {PROGRESS_KEY} entry is not valid"))?,
        ),
        None => None,
    };
    Ok((config, progress))
}

/// The file's tensors as the config's architecture `arch` (its `slots`, `len` floats) needs them.
pub(super) struct Tensors<'a> {
    pub(super) st: &'a SafeTensors<'a>,
    pub(super) arch: String,
    pub(super) slots: &'a [TensorSlot],
    pub(super) len: usize,
}

impl Tensors<'_> {
    /// Every slot's tensor, named with `prefix`, into a flat buffer (model.rs layout, padding 0).
    pub(super) fn read(&self, prefix: &str) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; self.len];
        for s in self.slots {
            self.read_into(&format!("{prefix}{}", s.name), s, &mut out)?;
        }
        Ok(out)
    }

    fn read_into(&self, name: &str, s: &TensorSlot, out: &mut [f32]) -> Result<()> {
        let arch = &self.arch;
        let t = self
            .st
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
    }

    /// An error naming the first tensor that is neither the model's, its Adam moments, nor (with
    /// `table`) the per-datapoint table's.
    pub(super) fn refuse_others(&self, table: bool) -> Result<()> {
        let mut expected: std::collections::HashSet<String> = self
            .slots
            .iter()
            .flat_map(|s| {
                [s.name.clone(), format!("optimizer.exp_avg.{}", s.name), format!("optimizer.exp_avg_sq.{}", s.name)]
            })
            .collect();
        if table {
            expected.extend(TABLE_NAMES.iter().map(|n| n.to_string()));
        }
        match self.st.names().into_iter().find(|n| !expected.contains(*n)) {
            Some(extra) => bail!("tensor {extra} does not belong to the config's architecture {}", self.arch),
            None => Ok(()),
        }
    }
}

/// One tensor of the per-datapoint table, [images, 2 latent].
fn read_table(st: &SafeTensors, name: &str, config: &RunConfig) -> Result<Vec<f32>> {
    let t = st.tensor(name).map_err(|_| anyhow::anyhow!("tensor {name} is missing"))?;
    if t.dtype() != Dtype::F32 || t.shape().len() != 2 || t.shape()[1] != 2 * config.latent_width() {
        bail!(
            "tensor {name} has shape {:?}; the per-datapoint table is [images, {}]",
            t.shape(),
            2 * config.latent_width()
        );
    }
    Ok(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}
