//! The `data` command: what a run would load, without a GPU. The folder's kind, its splits with
//! their images per class, the shape and colour, the decoded cache, and a grid of a few images.
use std::path::PathBuf;

use anyhow::Result;

use crate::data::cache::CacheState;
use crate::data::{self, Builtin, Dataset, FolderOptions, Split};
use crate::images::write_grid;

pub struct DataOptions {
    /// A folder of images or IDX files; None for the built-in `dataset`.
    pub dir: Option<PathBuf>,
    pub dataset: Builtin,
    pub folder: FolderOptions,
    /// Training images in the grid, and where it goes.
    pub n: usize,
    pub out: PathBuf,
}

/// "720 images (circle 240, square 240, stripe 240)".
fn describe_split(split: &Split, names: Option<&[String]>) -> String {
    let Some(names) = names else { return format!("{} images (unlabelled)", split.len()) };
    let mut counts = vec![0usize; names.len()];
    for &l in &split.labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    let per_class: Vec<String> = names.iter().zip(&counts).map(|(n, c)| format!("{n} {c}")).collect();
    format!("{} images ({})", split.len(), per_class.join(", "))
}

pub fn data(opts: &DataOptions) -> Result<()> {
    let (data, kind, cache): (Dataset, &str, Option<CacheState>) = match &opts.dir {
        Some(dir) if !data::is_idx_dir(dir) && dir.is_dir() => {
            let (d, state) = data::folder::load(dir, &dir.display().to_string(), &opts.folder)?;
            (d, "a folder of images", Some(state))
        }
        Some(dir) => (data::load(Some(dir), opts.dataset, &opts.folder)?, "a folder of IDX files", None),
        None => (data::load(None, opts.dataset, &opts.folder)?, "built in", None),
    };
    let s = data.shape;
    let colour = if s.channels == 3 { "RGB" } else { "grey" };
    println!("{}: {kind}; images {s} {colour} ({} values each)", data.name, s.pixels());
    let names = data.class_names.as_deref();
    match names {
        Some(n) => println!("  classes: {} ({})", n.len(), n.join(", ")),
        None => println!("  unlabelled (a flat folder): --conditional needs class folders"),
    }
    println!("  train:      {}", describe_split(&data.train, names));
    println!("  validation: {}", describe_split(&data.val, names));
    match cache {
        Some(CacheState::Hit(path)) => println!("  cache: read from {}", path.display()),
        Some(CacheState::Written(path, why)) => println!("  cache: {why}; written to {}", path.display()),
        Some(CacheState::Unavailable(why)) => println!("  cache: none ({why})"),
        None => println!("  cache: not needed (read directly)"),
    }
    let n = opts.n.min(data.train.len());
    let images: Vec<f32> = data.train.images[..n * s.pixels()].iter().map(|&v| v as f32 / 255.0).collect();
    write_grid(&opts.out, &images, n, s, 8.min(n.max(1)))?;
    println!("wrote {} ({n} training images)", opts.out.display());
    Ok(())
}
