//! Safetensors files of F32 tensors with string metadata, as the mixture and NCE commands write
//! them (checkpoint.rs has the VAE's, with its optimizer state): written atomically with a sorted
//! header, read back with every tensor's dtype, shape and finiteness checked.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::files::write_atomic;

/// One tensor to write: name, shape, values (row-major).
pub type Named<'a> = (String, Vec<usize>, &'a [f32]);

/// Writes `tensors` and `metadata` to `path` (atomically: a reader never sees half a file).
pub fn write(path: &Path, tensors: &[Named], metadata: HashMap<String, String>) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, shape, values)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(values))
                .with_context(|| format!("building tensor {name}"))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, Some(metadata)).context("serializing safetensors")?;
    write_atomic(path, &crate::checkpoint::sorted_header(bytes)?)
}

/// The "kind" entry of a safetensors file's metadata, from its header alone; None if the file
/// cannot be read or has none (a VAE checkpoint: checkpoint::load says what is wrong with it).
pub fn kind(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return None;
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    Some(header.get("__metadata__")?.get("kind")?.as_str()?.to_string())
}

/// A file read whole, for `TensorFile::parse`.
pub struct TensorFile<'a> {
    st: SafeTensors<'a>,
    pub metadata: HashMap<String, String>,
}

impl<'a> TensorFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<TensorFile<'a>> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow!("not a valid safetensors file ({e})"))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| anyhow!("unreadable header ({e})"))?;
        Ok(TensorFile { st, metadata: header.metadata().clone().unwrap_or_default() })
    }

    /// The metadata entry `key`, which must be there.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata.get(key).map(String::as_str).with_context(|| format!("the metadata has no {key} entry"))
    }

    /// The metadata entry `key` parsed as a T.
    pub fn meta_parsed<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        let v = self.meta(key)?;
        v.parse().map_err(|_| anyhow!("the metadata entry {key} = {v:?} is not a valid value"))
    }

    pub fn has(&self, name: &str) -> bool {
        self.st.names().contains(&name)
    }

    /// Tensor `name`'s shape.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.st.tensor(name).map_err(|_| anyhow!("tensor {name} is missing"))?.shape().to_vec())
    }

    /// Tensor `name`: F32, of shape `shape`, every value finite.
    pub fn f32s(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self.st.tensor(name).map_err(|_| anyhow!("tensor {name} is missing"))?;
        if t.dtype() != Dtype::F32 {
            bail!("tensor {name} is {:?}; wgvae stores F32", t.dtype());
        }
        if t.shape() != shape {
            bail!("tensor {name} has shape {:?}, expected {shape:?}", t.shape());
        }
        let values: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            bail!("tensor {name} holds a non-finite value ({}) at flat index {i}", values[i]);
        }
        Ok(values)
    }

    /// Refuses tensors other than `expected`.
    pub fn only(&self, expected: &[String]) -> Result<()> {
        match self.st.names().into_iter().find(|n| !expected.iter().any(|e| e == *n)) {
            Some(extra) => bail!("tensor {extra} does not belong in this file"),
            None => Ok(()),
        }
    }
}
