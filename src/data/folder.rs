//! Folders of images in torchvision's ImageFolder convention: DIR/<class>/*.{png,jpg,jpeg,bmp,webp}
//! with the sorted class folder names as labels, or a flat folder of unlabelled images; DIR/train
//! with DIR/val (or DIR/test) as explicit splits. Headers are read first (sizes and colour, to fix
//! the shape), then every image is decoded in parallel to u8 values, channel-major ([c][h][w]).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use super::cache::{self, CacheState};
pub use super::folder_options::{ColorMode, FolderOptions, Listing};
use super::{hold_out_every_tenth, Dataset, ImageShape, Split};

pub const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "webp"];

fn is_image(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str()))
}

/// The sorted entries of a directory: (subdirectories, image files, others).
fn entries(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>, usize)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the directory", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    let (mut dirs, mut images, mut others) = (Vec::new(), Vec::new(), 0);
    for p in paths {
        if p.is_dir() {
            dirs.push(p);
        } else if is_image(&p) {
            images.push(p);
        } else {
            others += 1;
        }
    }
    Ok((dirs, images, others))
}

/// Every image under `dir`, sorted, walking subfolders as ImageFolder does; symlink loops and
/// absurd depths are refused.
fn images_under(dir: &Path, seen: &mut Vec<PathBuf>, depth: usize, ignored: &mut usize) -> Result<Vec<PathBuf>> {
    let real = dir.canonicalize().with_context(|| format!("{}: cannot resolve the path", dir.display()))?;
    if seen.contains(&real) || depth > 32 {
        bail!("{}: a symlink loop (or folders nested more than 32 deep)", dir.display());
    }
    seen.push(real);
    let (dirs, mut images, others) = entries(dir)?;
    *ignored += others;
    for d in dirs {
        images.extend(images_under(&d, seen, depth + 1, ignored)?);
    }
    seen.pop();
    Ok(images)
}

/// Lists one split folder: class subfolders (named in `classes` when given, else sorted), or a
/// flat folder of images.
pub fn list_split(dir: &Path, classes: Option<&[String]>) -> Result<Listing> {
    let (dirs, top_images, others) = entries(dir)?;
    let mut listing = Listing { ignored: others, ..Listing::default() };
    if dirs.is_empty() {
        if classes.is_some() {
            bail!("{}: has no class folders, but the training split has", dir.display());
        }
        listing.files = top_images.into_iter().map(|p| (p, 0)).collect();
    } else {
        listing.ignored += top_images.len();
        let names: Vec<String> =
            dirs.iter().map(|d| d.file_name().unwrap_or_default().to_string_lossy().into()).collect();
        let known = classes.map(|c| c.to_vec()).unwrap_or_else(|| names.clone());
        if known.len() > 256 {
            bail!("{}: {} class folders; wgvae takes at most 256 classes", dir.display(), known.len());
        }
        for (d, name) in dirs.iter().zip(&names) {
            let label = known.iter().position(|k| k == name).with_context(|| {
                format!("{}: class {name:?} is not among the training split's classes", d.display())
            })?;
            let images = images_under(d, &mut Vec::new(), 0, &mut listing.ignored)?;
            if images.is_empty() {
                bail!("{}: the class folder {name:?} holds no images ({})", dir.display(), EXTENSIONS.join(", "));
            }
            listing.files.extend(images.into_iter().map(|p| (p, label as u8)));
        }
        listing.classes = Some(known);
    }
    if listing.files.is_empty() {
        bail!(
            "{}: holds no images ({}), nor an IDX set (train-images-idx3-ubyte[.gz])",
            dir.display(),
            EXTENSIONS.join(", ")
        );
    }
    Ok(listing)
}

/// (train, validation) listings: DIR/train with DIR/val or DIR/test, or DIR itself (validation
/// then the every-tenth hold-out).
pub fn list(dir: &Path) -> Result<(Listing, Option<Listing>)> {
    let train_dir = dir.join("train");
    if !train_dir.is_dir() {
        return Ok((list_split(dir, None)?, None));
    }
    let train = list_split(&train_dir, None)?;
    let val_dir = ["val", "test"].iter().map(|s| dir.join(s)).find(|d| d.is_dir());
    let val = val_dir.map(|d| list_split(&d, train.classes.as_deref())).transpose()?;
    Ok((train, val))
}

/// What an image's header says: (height, width, has colour).
pub type Header = (usize, usize, bool);

/// A file and its header, or why it could not be read.
type Headed = (PathBuf, Result<Header>);

/// An image's header, read without decoding the image.
fn header(path: &Path) -> Result<Header> {
    let reader = image::ImageReader::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    header_from(reader, &path.display().to_string())
}

/// One image as `shape`'s u8 values, channel-major; resized with Catmull-Rom when its size differs.
fn decode(path: &Path, shape: ImageShape) -> Result<Vec<u8>> {
    let reader = image::ImageReader::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    decode_from(reader, &path.display().to_string(), shape)
}

/// `header` of an image file's bytes (`name` for the errors); what the fuzz tests call.
pub fn header_of_bytes(bytes: &[u8], name: &str) -> Result<Header> {
    header_from(image::ImageReader::new(std::io::Cursor::new(bytes)), name)
}

/// `decode` of an image file's bytes (`name` for the errors); what the fuzz tests call.
pub fn decode_bytes(bytes: &[u8], name: &str, shape: ImageShape) -> Result<Vec<u8>> {
    decode_from(image::ImageReader::new(std::io::Cursor::new(bytes)), name, shape)
}

// The image crate's readers keep its default limits (at most 512 MiB per image), so a header
// that claims a huge image is an error, not an allocation.
fn header_from<R: std::io::BufRead + std::io::Seek>(reader: image::ImageReader<R>, name: &str) -> Result<Header> {
    let decoder = reader
        .with_guessed_format()
        .with_context(|| format!("{name}: cannot read"))?
        .into_decoder()
        .with_context(|| format!("{name}: not a readable image"))?;
    use image::ImageDecoder;
    let (w, h) = decoder.dimensions();
    let colour = decoder.color_type().has_color();
    Ok((h as usize, w as usize, colour))
}

fn decode_from<R: std::io::BufRead + std::io::Seek>(
    reader: image::ImageReader<R>,
    name: &str,
    shape: ImageShape,
) -> Result<Vec<u8>> {
    let img = reader
        .with_guessed_format()
        .with_context(|| format!("{name}: cannot read"))?
        .decode()
        .with_context(|| format!("{name}: cannot decode"))?;
    let (w, h) = (shape.width as u32, shape.height as u32);
    let img = if (img.width(), img.height()) == (w, h) {
        img
    } else {
        img.resize_exact(w, h, image::imageops::FilterType::CatmullRom)
    };
    // to_luma8 / to_rgb8 scale 16-bit values to 8 bits and drop alpha.
    Ok(if shape.channels == 1 {
        img.to_luma8().into_raw()
    } else {
        let hwc = img.to_rgb8().into_raw();
        let plane = shape.height * shape.width;
        (0..3 * plane).map(|i| hwc[(i % plane) * 3 + i / plane]).collect()
    })
}

/// Decodes a listing in parallel into a split; bad images stop the load (naming the file) or,
/// with `skip_bad`, are left out and counted.
fn decode_split(
    listing: &Listing,
    shape: ImageShape,
    skip_bad: bool,
    bar: &indicatif::ProgressBar,
) -> Result<(Split, usize)> {
    let decoded: Vec<Result<Vec<u8>>> = listing
        .files
        .par_iter()
        .map(|(path, _)| {
            let r = decode(path, shape);
            bar.inc(1);
            r
        })
        .collect();
    let mut split = Split {
        images: Vec::with_capacity(listing.files.len() * shape.pixels()),
        labels: Vec::new(),
        pixels: shape.pixels(),
    };
    let mut bad = 0;
    for (r, (_, label)) in decoded.into_iter().zip(&listing.files) {
        match r {
            Ok(values) => {
                split.images.extend(values);
                split.labels.push(*label);
            }
            Err(e) if skip_bad => {
                bad += 1;
                eprintln!("warning: leaving out {e:#}");
            }
            Err(e) => return Err(e.context("pass --skip-bad to leave such files out")),
        }
    }
    Ok((split, bad))
}

/// The shape every image becomes: the requested size or the images' own (which must agree), grey
/// or RGB.
fn choose_shape(headers: &[Headed], opts: &FolderOptions) -> Result<ImageShape> {
    let good: Vec<(&PathBuf, Header)> = headers.iter().filter_map(|(p, h)| h.as_ref().ok().map(|h| (p, *h))).collect();
    let Some((first_path, (h0, w0, _))) = good.first().copied() else { bail!("no image could be read") };
    let (height, width) = match opts.size {
        Some(size) => size,
        None => {
            if let Some((p, (h, w, _))) = good.iter().find(|(_, (h, w, _))| (*h, *w) != (h0, w0)) {
                bail!(
                    "the images differ in size ({} is {h0}x{w0}, {} is {h}x{w}); pass --image-size N or HxW to \
                     resize them all",
                    first_path.display(),
                    p.display()
                );
            }
            (h0, w0)
        }
    };
    let channels = match opts.color {
        ColorMode::Grey => 1,
        ColorMode::Rgb => 3,
        ColorMode::Auto => {
            if good.iter().any(|(_, (_, _, c))| *c) {
                3
            } else {
                1
            }
        }
    };
    Ok(ImageShape { channels, height, width })
}

/// A folder of images as a dataset (see the module comment), from the decoded cache when it is
/// current, else decoded (and cached).
pub fn load(dir: &Path, name: &str, opts: &FolderOptions) -> Result<(Dataset, CacheState)> {
    load_with_cache(dir, name, opts, cache::cache_path(dir, opts))
}

/// `load` with the cache in `cache_file` (None: no cache).
pub fn load_with_cache(
    dir: &Path,
    name: &str,
    opts: &FolderOptions,
    cache_file: Option<PathBuf>,
) -> Result<(Dataset, CacheState)> {
    let (train, val) = list(dir)?;
    let ignored = train.ignored + val.as_ref().map_or(0, |v| v.ignored);
    if ignored > 0 {
        eprintln!(
            "{name}: ignored {ignored} files that are not images ({}) or lie beside class folders",
            EXTENSIONS.join(", ")
        );
    }
    let build = || decode_all(name, opts, &train, val.as_ref());
    cache::load_or_build(cache_file, name, (&train, val.as_ref()), build)
}

/// Reads every header, fixes the shape, and decodes both splits.
fn decode_all(name: &str, opts: &FolderOptions, train: &Listing, val: Option<&Listing>) -> Result<Dataset> {
    let all: Vec<&PathBuf> = train.files.iter().chain(val.iter().flat_map(|v| &v.files)).map(|(p, _)| p).collect();
    let started = std::time::Instant::now();
    let headers: Vec<Headed> = all.par_iter().map(|p| ((*p).clone(), header(p))).collect();
    if !opts.skip_bad {
        if let Some((_, Err(e))) = headers.iter().find(|(_, h)| h.is_err()) {
            bail!("{e:#}; pass --skip-bad to leave such files out");
        }
    }
    let shape = choose_shape(&headers, opts)?;
    let bar = indicatif::ProgressBar::new(all.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("decoding {pos}/{len} images [{bar:30}] {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (train_split, bad_train) = decode_split(train, shape, opts.skip_bad, &bar)?;
    let (train_split, val_split, bad_val) = match val {
        Some(v) => {
            let (val_split, bad) = decode_split(v, shape, opts.skip_bad, &bar)?;
            (train_split, val_split, bad)
        }
        None => {
            let (t, v) = hold_out_every_tenth(&train_split);
            (t, v, 0)
        }
    };
    bar.finish_and_clear();
    eprintln!("{name}: decoded {} images in {:.1} s", all.len(), started.elapsed().as_secs_f64());
    if bad_train + bad_val > 0 {
        eprintln!("{name}: skipped {} images that could not be decoded", bad_train + bad_val);
    }
    if train_split.is_empty() || val_split.is_empty() {
        bail!(
            "{name}: {} training and {} validation images; both splits need some",
            train_split.len(),
            val_split.len()
        );
    }
    let class_names = train.classes.clone();
    Ok(Dataset { name: name.to_string(), train: train_split, val: val_split, shape, class_names })
}
