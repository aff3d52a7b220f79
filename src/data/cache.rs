//! The decoded cache of a folder of images: the u8 values, labels, class names and shape of both
//! splits, keyed by the folder and the options, and stamped with a fingerprint of the source
//! files' names, sizes and modification times, so a second run reads one file instead of decoding
//! every image, and a changed folder is decoded again. Written atomically; a cache that is stale,
//! truncated or from another version is rebuilt, with a message that says which.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::folder_options::{ColorMode, FolderOptions, Listing};
use super::{Dataset, ImageShape, Split};

const MAGIC: &[u8; 8] = b"WGVAEDC1";

/// The cache folder: $WGVAE_CACHE_DIR, else $XDG_CACHE_HOME/wgvae, else ~/.cache/wgvae; None when
/// there is no home to put it in.
pub fn cache_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("WGVAE_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("wgvae")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("wgvae")))
}

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The cache file for `dir` read with `opts`.
pub fn cache_path(dir: &Path, opts: &FolderOptions) -> Option<PathBuf> {
    let real = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let color = match opts.color {
        ColorMode::Auto => "auto",
        ColorMode::Grey => "grey",
        ColorMode::Rgb => "rgb",
    };
    let key = format!("{}|{:?}|{color}|{}", real.display(), opts.size, opts.skip_bad);
    Some(cache_dir()?.join(format!("folder-{:016x}.bin", fnv(FNV_START, key.as_bytes()))))
}

/// FNV-1a over every listed file's path, label, size and modification time, and the class names:
/// what decides the cache's contents, read without opening a single image.
pub fn fingerprint(train: &Listing, val: Option<&Listing>) -> Result<u64> {
    let mut h = FNV_START;
    for listing in std::iter::once(train).chain(val) {
        for name in listing.classes.iter().flatten() {
            h = fnv(h, name.as_bytes());
        }
        for (path, label) in &listing.files {
            let meta = std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
            let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            h = fnv(h, path.as_os_str().as_encoded_bytes());
            h = fnv(h, &[*label]);
            h = fnv(h, &meta.len().to_le_bytes());
            h = fnv(h, &mtime.map_or(0, |d| d.as_nanos()).to_le_bytes());
        }
        h = fnv(h, b"|");
    }
    Ok(h)
}

fn put(out: &mut Vec<u8>, v: u64) {
    out.extend(v.to_le_bytes());
}

/// The dataset as the cache file's bytes.
pub fn encode(data: &Dataset, fingerprint: u64) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    put(&mut out, fingerprint);
    for v in [data.shape.channels, data.shape.height, data.shape.width] {
        put(&mut out, v as u64);
    }
    let names = data.class_names.clone();
    put(&mut out, names.as_ref().map_or(u64::MAX, |n| n.len() as u64));
    for name in names.iter().flatten() {
        put(&mut out, name.len() as u64);
        out.extend(name.as_bytes());
    }
    for split in [&data.train, &data.val] {
        put(&mut out, split.len() as u64);
        out.extend(&split.labels);
        out.extend(&split.images);
    }
    out
}

/// Reads u64s and byte runs off the front of a cache file, failing on truncation.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            bail!("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().expect("8 bytes")))
    }

    fn usize(&mut self, max: u64) -> Result<usize> {
        match self.u64()? {
            v if v <= max => Ok(v as usize),
            v => bail!("a count of {v} is out of range"),
        }
    }
}

/// The dataset in a cache file, if the file is whole and its fingerprint is `fingerprint`.
pub fn decode(bytes: &[u8], fingerprint: u64, name: &str) -> Result<Option<Dataset>> {
    let mut r = Reader(bytes);
    if r.bytes(8)? != MAGIC {
        bail!("not a wgvae cache of this version");
    }
    if r.u64()? != fingerprint {
        return Ok(None);
    }
    let (channels, height, width) = (r.usize(4)?, r.usize(1 << 20)?, r.usize(1 << 20)?);
    let shape = ImageShape { channels, height, width };
    let class_names = match r.u64()? {
        u64::MAX => None,
        n if n <= 256 => Some(
            (0..n)
                .map(|_| {
                    let len = r.usize(4096)?;
                    Ok(String::from_utf8_lossy(r.bytes(len)?).into_owned())
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        n => bail!("{n} class names"),
    };
    let mut split = || -> Result<Split> {
        let n = r.usize(1 << 32)?;
        let labels = r.bytes(n)?.to_vec();
        let images = r.bytes(n.checked_mul(shape.pixels()).context("sizes overflow")?)?.to_vec();
        Ok(Split { images, labels, pixels: shape.pixels() })
    };
    let (train, val) = (split()?, split()?);
    if !r.0.is_empty() {
        bail!("{} bytes too many", r.0.len());
    }
    Ok(Some(Dataset { name: name.to_string(), train, val, shape, class_names }))
}

/// What became of the cache on this load, for `wgvae data` and the run's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheState {
    /// Read from the cache.
    Hit(PathBuf),
    /// Decoded and written to the cache; the string says why it was not used ("none", "stale", ...).
    Written(PathBuf, String),
    /// No cache folder could be had (no home), or it could not be written: decoded only.
    Unavailable(String),
}

/// The cached dataset when the cache is current; else decodes with `build` and writes the cache.
pub fn load_or_build(
    cache_file: Option<PathBuf>,
    name: &str,
    (train, val): (&Listing, Option<&Listing>),
    build: impl FnOnce() -> Result<Dataset>,
) -> Result<(Dataset, CacheState)> {
    let Some(path) = cache_file else {
        return Ok((build()?, CacheState::Unavailable("no cache folder (set WGVAE_CACHE_DIR or HOME)".into())));
    };
    let fingerprint = fingerprint(train, val)?;
    let why = match std::fs::read(&path) {
        Err(_) => "none yet".to_string(),
        Ok(bytes) => match decode(&bytes, fingerprint, name) {
            Ok(Some(data)) => return Ok((data, CacheState::Hit(path))),
            Ok(None) => "stale: the folder's files changed".to_string(),
            Err(e) => format!("unreadable ({e:#})"),
        },
    };
    let data = build()?;
    let written = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
        .map_err(anyhow::Error::from)
        .and_then(|_| crate::files::write_atomic(&path, &encode(&data, fingerprint)));
    let state = match written {
        Ok(()) => CacheState::Written(path, why),
        Err(e) => CacheState::Unavailable(format!("cannot write {} ({e:#})", path.display())),
    };
    Ok((data, state))
}
