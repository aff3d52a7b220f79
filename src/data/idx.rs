//! The IDX format (MNIST and relatives): a big-endian header (magic, dimension sizes), then u8
//! data. Every field is checked against the file's length before any data is used.
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

pub const IMAGES_MAGIC: u32 = 0x0000_0803; // 2051: u8 data, 3 dimensions
pub const LABELS_MAGIC: u32 = 0x0000_0801; // 2049: u8 data, 1 dimension

/// Images [count, rows * cols] as bytes.
#[derive(Debug, Clone)]
pub struct Images {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Gunzips when the bytes start with gzip's magic, else returns them as they are.
pub fn maybe_gunzip(bytes: Vec<u8>, name: &str) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{name}: corrupt gzip data"))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

fn header(bytes: &[u8], name: &str, words: usize) -> Result<Vec<u32>> {
    if bytes.len() < 4 * words {
        bail!("{name}: file is {} bytes, too short for an IDX header of {} bytes", bytes.len(), 4 * words);
    }
    Ok(bytes[..4 * words].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
}

pub fn parse_images(bytes: &[u8], name: &str) -> Result<Images> {
    let h = header(bytes, name, 4)?;
    if h[0] != IMAGES_MAGIC {
        bail!("{name}: magic number {:#010x} is not an IDX image file's ({IMAGES_MAGIC:#010x} = 2051)", h[0]);
    }
    let (count, rows, cols) = (h[1] as usize, h[2] as usize, h[3] as usize);
    let expected = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .and_then(|n| n.checked_add(16))
        .with_context(|| format!("{name}: header sizes {count} x {rows} x {cols} overflow"))?;
    if bytes.len() != expected {
        bail!("{name}: header says {count} images of {rows}x{cols} ({expected} bytes with the header) but the file has {} bytes",
              bytes.len());
    }
    if count == 0 {
        bail!("{name}: holds no images");
    }
    Ok(Images { count, rows, cols, pixels: bytes[16..].to_vec() })
}

pub fn parse_labels(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let h = header(bytes, name, 2)?;
    if h[0] != LABELS_MAGIC {
        bail!("{name}: magic number {:#010x} is not an IDX label file's ({LABELS_MAGIC:#010x} = 2049)", h[0]);
    }
    let count = h[1] as usize;
    if bytes.len() != 8 + count {
        bail!(
            "{name}: header says {count} labels ({} bytes with the header) but the file has {} bytes",
            8 + count,
            bytes.len()
        );
    }
    Ok(bytes[8..].to_vec())
}

/// Reads `dir/stem` or `dir/stem.gz`, whichever exists. Ok(None) when neither does.
pub fn read_idx_file(dir: &Path, stem: &str) -> Result<Option<(Vec<u8>, String)>> {
    for name in [stem.to_string(), format!("{stem}.gz")] {
        let path = dir.join(&name);
        if path.exists() {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let shown = path.display().to_string();
            return Ok(Some((maybe_gunzip(bytes, &shown)?, shown)));
        }
    }
    Ok(None)
}
