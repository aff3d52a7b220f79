//! The `encode` command: every image of a split through a checkpoint's encoder, q(z|x)'s
//! parameters written to a file (codes_file.rs) for use downstream, and latents.png beside it:
//! the codes of the validation split coloured by class (latents_plot.rs).
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};

use super::codes_file::{self, Codes};
use crate::data::Split;
use crate::session::{self, CheckpointSource};

/// Which images `encode` runs through the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EncodeSplit {
    Train,
    Val,
    All,
}

pub struct EncodeOptions {
    pub from: CheckpointSource,
    pub split: EncodeSplit,
    pub max_images: Option<usize>,
    /// .safetensors, .npy or .csv.
    pub out: PathBuf,
}

/// Images per call of the trainer's encoder: the codes are read back a chunk at a time.
const CHUNK: usize = 8192;

/// The images to encode as one split, with each one's (split, index in it).
fn chosen(train: &Split, val: &Split, which: EncodeSplit, max: Option<usize>) -> (Split, Vec<(u8, u32)>) {
    let parts: Vec<(u8, &Split)> = match which {
        EncodeSplit::Train => vec![(0, train)],
        EncodeSplit::Val => vec![(1, val)],
        EncodeSplit::All => vec![(0, train), (1, val)],
    };
    let mut out = Split { images: Vec::new(), labels: Vec::new(), pixels: train.pixels };
    let mut at = Vec::new();
    for (id, split) in parts {
        let n = max.map_or(split.len(), |m| m.saturating_sub(at.len()).min(split.len()));
        out.images.extend_from_slice(&split.images[..n * split.pixels]);
        out.labels.extend_from_slice(&split.labels[..n]);
        at.extend((0..n as u32).map(|i| (id, i)));
    }
    (out, at)
}

pub async fn encode(args: &EncodeOptions) -> Result<()> {
    codes_file::check_path(&args.out)?;
    let (ck, mut data) = session::load_checkpoint(&args.from.checkpoint, args.from.data.as_ref())?;
    let (split, at) = chosen(&data.train, &data.val, args.split, args.max_images);
    if split.is_empty() {
        bail!("{}: no images in the {:?} split to encode", data.name, args.split);
    }
    let (name, class_names) = (data.name.clone(), data.class_names.clone().unwrap_or_default());
    data.val = split; // the trainer's evaluation split is what it encodes
                      // The training split is not used: one batch of it keeps the trainer whole, and memory low.
    let keep = ck.config.batch.min(data.train.len());
    data.train.images.truncate(keep * data.train.pixels);
    data.train.labels.truncate(keep);
    let s = session::open(ck.config.clone(), &args.from.device, data, &ck.params)?;
    session::require_encoder(&s, "encode")?;
    println!("adapter: {}", s.gpu.describe());
    let started = Instant::now();
    let n = at.len();
    let gaussian = s.trainer.model.arch.categorical.is_none();
    let (rows, width) = (s.trainer.model.arch.encoder_outputs(), s.trainer.model.arch.latent);
    let bar = indicatif::ProgressBar::new(n as u64);
    let (mut mean, mut logvar) = (Vec::with_capacity(n * width), Vec::with_capacity(n * width));
    for first in (0..n).step_by(CHUNK) {
        let picks: Vec<u32> = (first as u32..(first + CHUNK).min(n) as u32).collect();
        let out = s.trainer.encode(&s.gpu, &picks).await?;
        for row in out.chunks_exact(rows) {
            mean.extend_from_slice(&row[..width]);
            logvar.extend_from_slice(&row[width..]);
        }
        bar.set_position((first + picks.len()) as u64);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let codes = Codes {
        width,
        mean,
        logvar: gaussian.then_some(logvar),
        label: s.data.val.labels.clone(),
        index: at.iter().map(|a| a.1).collect(),
        split: at.iter().map(|a| a.0).collect(),
        class_names,
        source: format!("{} on {name}", args.from.checkpoint.display()),
    };
    codes_file::write(&args.out, &codes)?;
    let picture = args.out.with_file_name("latents.png");
    draw_latents(&picture, &codes, &format!("{} on {name}", s.config.describe()))?;
    let memory = super::train::peak_rss_mib().map_or(String::new(), |m| format!(", peak resident memory {m:.0} MiB"));
    println!("encoded {n} images in {seconds:.2} s{memory}");
    println!("wrote {} and {}", args.out.display(), picture.display());
    Ok(())
}

/// latents.png from the validation rows of `codes`, or from all of them when it has none.
fn draw_latents(path: &std::path::Path, codes: &Codes, model: &str) -> Result<()> {
    let val: Vec<usize> = (0..codes.len()).filter(|&i| codes.split[i] == 1).collect();
    let (rows, which): (Vec<usize>, &str) =
        if val.is_empty() { ((0..codes.len()).collect(), "training") } else { (val, "validation") };
    let w = codes.width;
    let points: Vec<f32> = rows.iter().flat_map(|&i| codes.mean[i * w..(i + 1) * w].iter().copied()).collect();
    let labels: Vec<u8> = rows.iter().map(|&i| codes.label[i]).collect();
    let what = if codes.logvar.is_some() { "means of q(z|x)" } else { "logits of q(z|x)" };
    let title = format!("{what}, {} {which} images; {model}", rows.len());
    super::latents_plot::draw(path, (&points, w), &labels, &codes.class_names, &title)
}
