//! The IDX format (MNIST and relatives): a big-endian header (magic, dimension sizes), then u8
//! data. Files are read as streams, gunzipped on the fly: the header is checked first, the data
//! are read only up to the size it claims (so a gzip bomb stops there), and memory grows with the
//! bytes that actually arrive, never from a count in the header.
use std::io::{BufRead, BufReader, Read};
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

/// An IDX stream: gunzipped when it starts with gzip's magic, else as it is.
pub fn reader<'a>(mut inner: impl BufRead + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let gzip = inner.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip { Box::new(flate2::bufread::GzDecoder::new(inner)) } else { Box::new(inner) })
}

/// What a failed read means: the stream ended early, or the gzip data are corrupt.
fn read_error(e: std::io::Error, name: &str, what: &str) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => anyhow::anyhow!("{name}: the file ends inside {what}"),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            anyhow::anyhow!("{name}: corrupt gzip data in {what} ({e})")
        }
        _ => anyhow::anyhow!("{name}: reading {what}: {e}"),
    }
}

fn header(r: &mut dyn Read, name: &str, words: usize) -> Result<Vec<u32>> {
    let mut bytes = vec![0u8; 4 * words];
    r.read_exact(&mut bytes).map_err(|e| read_error(e, name, &format!("its IDX header of {} bytes", 4 * words)))?;
    Ok(bytes.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Exactly `len` bytes of data, and then the end of the stream; `what` says what the header
/// claimed, for the errors.
fn data(r: &mut dyn Read, len: usize, name: &str, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(len as u64).read_to_end(&mut out).map_err(|e| read_error(e, name, "the data"))?;
    if out.len() < len {
        bail!("{name}: header says {what} ({len} bytes of data) but the data end after {} bytes", out.len());
    }
    // Reading past the end also checks a gzip stream's checksum.
    let mut extra = [0u8; 1];
    let more = loop {
        match r.read(&mut extra) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e, name, "the end of the data")),
        }
    };
    if more > 0 {
        bail!("{name}: header says {what} ({len} bytes of data) but the file has more bytes after them");
    }
    Ok(out)
}

pub fn read_images(r: &mut dyn Read, name: &str) -> Result<Images> {
    let h = header(r, name, 4)?;
    if h[0] != IMAGES_MAGIC {
        bail!("{name}: magic number {:#010x} is not an IDX image file's ({IMAGES_MAGIC:#010x} = 2051)", h[0]);
    }
    let (count, rows, cols) = (h[1] as usize, h[2] as usize, h[3] as usize);
    if count == 0 {
        bail!("{name}: holds no images");
    }
    if rows == 0 || cols == 0 {
        bail!("{name}: header says images of {rows}x{cols}, which have no pixels");
    }
    let len = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .with_context(|| format!("{name}: header sizes {count} x {rows} x {cols} overflow"))?;
    let pixels = data(r, len, name, &format!("{count} images of {rows}x{cols}"))?;
    Ok(Images { count, rows, cols, pixels })
}

pub fn read_labels(r: &mut dyn Read, name: &str) -> Result<Vec<u8>> {
    let h = header(r, name, 2)?;
    if h[0] != LABELS_MAGIC {
        bail!("{name}: magic number {:#010x} is not an IDX label file's ({LABELS_MAGIC:#010x} = 2049)", h[0]);
    }
    let count = h[1] as usize;
    data(r, count, name, &format!("{count} labels"))
}

/// The images of an IDX file's bytes (gzipped or not).
pub fn parse_images(bytes: &[u8], name: &str) -> Result<Images> {
    read_images(&mut *reader(bytes)?, name)
}

/// The labels of an IDX file's bytes (gzipped or not).
pub fn parse_labels(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    read_labels(&mut *reader(bytes)?, name)
}

/// Opens `dir/stem` or `dir/stem.gz`, whichever exists, as a stream (with the name to show).
/// Ok(None) when neither does.
pub fn open_idx_file(dir: &Path, stem: &str) -> Result<Option<(Box<dyn Read>, String)>> {
    for name in [stem.to_string(), format!("{stem}.gz")] {
        let path = dir.join(&name);
        if path.exists() {
            let shown = path.display().to_string();
            let file = std::fs::File::open(&path).with_context(|| format!("opening {shown}"))?;
            let stream = reader(BufReader::new(file)).with_context(|| format!("reading {shown}"))?;
            return Ok(Some((stream, shown)));
        }
    }
    Ok(None)
}
