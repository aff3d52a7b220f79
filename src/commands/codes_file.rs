//! The file `encode` writes: each image's q(z|x) (mean and log-variance, or a categorical
//! latent's logits), its label, its index in its split and which split, as safetensors (tensors
//! `mean`, `logvar` or `logits`, `label`, `index`, `split`; the class names and the source in
//! the metadata), as a NumPy .npy structured array with the same fields, or as CSV. Written
//! atomically; `read` reads the safetensors form back.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::files::write_atomic;

const METADATA_KEY: &str = "wgvae.encode";

/// The codes of n images with a latent of `width` values per image.
#[derive(Clone, Debug, PartialEq)]
pub struct Codes {
    pub width: usize,
    /// [n, width]: q's means, or for categorical latents q's logits (`logvar` None).
    pub mean: Vec<f32>,
    pub logvar: Option<Vec<f32>>,
    pub label: Vec<u8>,
    /// Each image's index in its split.
    pub index: Vec<u32>,
    /// 0 for the training split, 1 for the validation split.
    pub split: Vec<u8>,
    pub class_names: Vec<String>,
    /// What the codes are of: the checkpoint and the data.
    pub source: String,
}

impl Codes {
    pub fn len(&self) -> usize {
        self.label.len()
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_empty()
    }

    fn first_name(&self) -> &'static str {
        if self.logvar.is_some() {
            "mean"
        } else {
            "logits"
        }
    }
}

#[derive(Clone, Copy)]
enum Format {
    Safetensors,
    Npy,
    Csv,
}

fn format(path: &Path) -> Result<Format> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("safetensors") => Ok(Format::Safetensors),
        Some("npy") => Ok(Format::Npy),
        Some("csv") => Ok(Format::Csv),
        _ => bail!("--out {}: give a file ending in .safetensors, .npy or .csv", path.display()),
    }
}

/// Refuses an output path `write` could not write, before any work: a wrong extension, or a
/// folder that does not exist.
pub fn check_path(path: &Path) -> Result<()> {
    format(path)?;
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => bail!("--out {}: the folder {} does not exist", path.display(), dir.display()),
        _ => Ok(()),
    }
}

/// Writes `codes` as the extension of `path` says: .safetensors, .npy or .csv.
pub fn write(path: &Path, codes: &Codes) -> Result<()> {
    let bytes = match format(path)? {
        Format::Safetensors => to_safetensors(codes)?,
        Format::Npy => to_npy(codes),
        Format::Csv => to_csv(codes).into_bytes(),
    };
    write_atomic(path, &bytes)
}

fn to_safetensors(codes: &Codes) -> Result<Vec<u8>> {
    let (n, w) = (codes.len(), codes.width);
    let long = |v: &[u32]| v.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect::<Vec<u8>>();
    let labels: Vec<u32> = codes.label.iter().map(|&l| l as u32).collect();
    let (label, index) = (long(&labels), long(&codes.index));
    let mut tensors =
        vec![(codes.first_name(), TensorView::new(Dtype::F32, vec![n, w], bytemuck::cast_slice(&codes.mean))?)];
    if let Some(logvar) = &codes.logvar {
        tensors.push(("logvar", TensorView::new(Dtype::F32, vec![n, w], bytemuck::cast_slice(logvar))?));
    }
    tensors.push(("label", TensorView::new(Dtype::I64, vec![n], &label)?));
    tensors.push(("index", TensorView::new(Dtype::I64, vec![n], &index)?));
    tensors.push(("split", TensorView::new(Dtype::U8, vec![n], &codes.split)?));
    let meta = serde_json::json!({ "class_names": codes.class_names, "source": codes.source });
    let metadata = HashMap::from([(METADATA_KEY.to_string(), meta.to_string())]);
    let bytes = safetensors::serialize(tensors, Some(metadata)).context("serializing safetensors")?;
    crate::checkpoint::sorted_header(bytes)
}

/// NumPy's format 1.0: a structured array of n records (first, logvar, label, index, split),
/// loadable with `numpy.load(path)` (no pickle).
fn to_npy(codes: &Codes) -> Vec<u8> {
    let (n, w) = (codes.len(), codes.width);
    let mut descr = format!("[('{}', '<f4', ({w},)), ", codes.first_name());
    if codes.logvar.is_some() {
        descr += &format!("('logvar', '<f4', ({w},)), ");
    }
    descr += "('label', '<i8'), ('index', '<i8'), ('split', '|u1')]";
    let mut header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': ({n},), }}");
    // The magic, version and length take 10 bytes; the header ends in a newline at a multiple of 64.
    header += &" ".repeat(63 - (10 + header.len()) % 64);
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for i in 0..n {
        out.extend(bytemuck::cast_slice(&codes.mean[i * w..(i + 1) * w]));
        if let Some(logvar) = &codes.logvar {
            out.extend(bytemuck::cast_slice(&logvar[i * w..(i + 1) * w]));
        }
        out.extend((codes.label[i] as i64).to_le_bytes());
        out.extend((codes.index[i] as i64).to_le_bytes());
        out.push(codes.split[i]);
    }
    out
}

/// One row per image: split, index, label, class, then the first field's and logvar's columns
/// (shortest text that reads back as the same f32).
fn to_csv(codes: &Codes) -> String {
    let w = codes.width;
    let first = codes.first_name();
    let mut head = vec!["split".to_string(), "index".into(), "label".into(), "class".into()];
    head.extend((0..w).map(|j| format!("{first}_{j}")));
    if codes.logvar.is_some() {
        head.extend((0..w).map(|j| format!("logvar_{j}")));
    }
    let mut csv = head.join(",") + "\n";
    for i in 0..codes.len() {
        let split = ["train", "val"][codes.split[i].min(1) as usize];
        let label = codes.label[i] as usize;
        let class = codes.class_names.get(label).map_or(String::new(), |c| c.replace([',', '\n', '"'], "_"));
        let mut row = vec![split.to_string(), codes.index[i].to_string(), label.to_string(), class];
        row.extend(codes.mean[i * w..(i + 1) * w].iter().map(|v| v.to_string()));
        if let Some(logvar) = &codes.logvar {
            row.extend(logvar[i * w..(i + 1) * w].iter().map(|v| v.to_string()));
        }
        csv += &(row.join(",") + "\n");
    }
    csv
}

/// Reads a .safetensors file `write` wrote.
pub fn read(path: &Path) -> Result<Codes> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes).with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)?;
    let meta: serde_json::Value = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .and_then(|m| serde_json::from_str(m).ok())
        .with_context(|| format!("{}: no {METADATA_KEY} metadata (not written by `wgvae encode`)", path.display()))?;
    let tensor = |name: &str, dtype: Dtype| -> Result<(Vec<usize>, Vec<u8>)> {
        let t = st.tensor(name).with_context(|| format!("{}: no tensor {name}", path.display()))?;
        if t.dtype() != dtype {
            bail!("{}: tensor {name} is {:?}, not {dtype:?}", path.display(), t.dtype());
        }
        Ok((t.shape().to_vec(), t.data().to_vec()))
    };
    let floats = |b: Vec<u8>| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let longs = |b: Vec<u8>| -> Vec<i64> {
        b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()
    };
    let gaussian = st.names().contains(&"logvar");
    let (shape, first) = tensor(if gaussian { "mean" } else { "logits" }, Dtype::F32)?;
    let logvar = match gaussian {
        true => Some(floats(tensor("logvar", Dtype::F32)?.1)),
        false => None,
    };
    let class_names = meta["class_names"]
        .as_array()
        .map_or(Vec::new(), |a| a.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect());
    Ok(Codes {
        width: shape.get(1).copied().unwrap_or(0),
        mean: floats(first),
        logvar,
        label: longs(tensor("label", Dtype::I64)?.1).into_iter().map(|l| l as u8).collect(),
        index: longs(tensor("index", Dtype::I64)?.1).into_iter().map(|i| i as u32).collect(),
        split: tensor("split", Dtype::U8)?.1,
        class_names,
        source: meta["source"].as_str().unwrap_or_default().to_string(),
    })
}
