//! The table of malformed inputs malformed.rs runs: each case's files, command, exit code and the
//! key words its message must have.
use std::io::Write;
use std::path::Path;

use super::checkpoints::trained;

/// Makes a case's files under the folder it is given.
type Setup = fn(&Path);

pub struct Case {
    pub name: &'static str,
    pub setup: Setup,
    /// The command; `{d}` is the case's folder, `{run}` the shared trained run.
    pub args: &'static [&'static str],
    pub code: i32,
    pub needles: &'static [&'static str],
}

fn nothing(_: &Path) {}

fn idx(count: u32, rows: u32, cols: u32, data: usize) -> Vec<u8> {
    let mut b: Vec<u8> = [2051u32, count, rows, cols].iter().flat_map(|v| v.to_be_bytes()).collect();
    b.extend((0..data).map(|i| (i % 251) as u8));
    b
}

fn labels(count: u32) -> Vec<u8> {
    let mut b: Vec<u8> = [2049u32, count].iter().flat_map(|v| v.to_be_bytes()).collect();
    b.extend((0..count).map(|i| (i % 10) as u8));
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

fn write(d: &Path, name: &str, bytes: &[u8]) {
    let path = d.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, bytes).expect("write");
}

/// An IDX folder of 40 images of 4x4 whose label file is `l`.
fn idx_with_labels(d: &Path, l: &[u8]) {
    write(d, "data/train-images-idx3-ubyte", &idx(40, 4, 4, 640));
    write(d, "data/train-labels-idx1-ubyte", l);
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 40 + y) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("png");
    out.into_inner()
}

fn model_bytes() -> Vec<u8> {
    std::fs::read(trained().join(wgvae::checkpoint::MODEL_FILE)).expect("checkpoint")
}

/// The trained model file with `edit` applied, as d/ck/model.safetensors.
fn edited_checkpoint(d: &Path, edit: fn(&mut Vec<u8>)) {
    let mut b = model_bytes();
    edit(&mut b);
    write(d, "ck/model.safetensors", &b);
}

fn header_len(b: &[u8]) -> usize {
    8 + u64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as usize
}

pub const CASES: &[Case] = &[
    // Flags.
    Case {
        name: "hidden too wide",
        setup: nothing,
        args: &["train", "--hidden", "16385"],
        code: 1,
        needles: &["--hidden 16385", "16384"],
    },
    Case {
        name: "latent too wide",
        setup: nothing,
        args: &["train", "--latent", "5000"],
        code: 1,
        needles: &["--latent 5000"],
    },
    Case {
        name: "batch beyond rows",
        setup: nothing,
        args: &["train", "--batch", "70000"],
        code: 1,
        needles: &["--batch 70000"],
    },
    // Sizes past any adapter's storage binding (at most 4 GiB): refused before allocation, naming
    // the flags, the bytes and the limit.
    Case {
        name: "parameters past a binding",
        setup: nothing,
        args: &["train", "--hidden", "16384", "16384", "16384", "--out", "{d}/o"],
        code: 1,
        needles: &["--hidden [16384, 16384, 16384]", "4402056704 bytes", "largest storage binding"],
    },
    Case {
        name: "activations past a binding",
        setup: nothing,
        args: &["train", "--batch", "64", "--mc-samples", "1024", "--hidden", "16384", "--out", "{d}/o"],
        code: 1,
        needles: &["--batch 64 x --mc-samples 1024", "4294967296 bytes", "largest storage binding"],
    },
    Case {
        name: "epochs absurd",
        setup: nothing,
        args: &["train", "--epochs", "999999999"],
        code: 1,
        needles: &["--epochs 999999999"],
    },
    Case { name: "lr infinite", setup: nothing, args: &["train", "--lr", "inf"], code: 1, needles: &["--lr"] },
    Case { name: "beta negative", setup: nothing, args: &["train", "--beta", "-1"], code: 1, needles: &["--beta"] },
    Case {
        name: "free bits huge",
        setup: nothing,
        args: &["train", "--free-bits", "1000"],
        code: 1,
        needles: &["--free-bits"],
    },
    Case {
        name: "iwae k zero",
        setup: nothing,
        args: &["train", "--objective", "iwae", "--k", "0"],
        code: 1,
        needles: &["--k 0"],
    },
    Case {
        name: "image size zero",
        setup: nothing,
        args: &["train", "--image-size", "0"],
        code: 1,
        needles: &["--image-size 0x0"],
    },
    Case {
        name: "image size malformed",
        setup: nothing,
        args: &["train", "--image-size", "3x"],
        code: 2,
        needles: &["--image-size"],
    },
    Case {
        name: "unknown backend",
        setup: nothing,
        args: &["train", "--backend", "cuda"],
        code: 2,
        needles: &["--backend", "cuda"],
    },
    Case {
        name: "no such adapter",
        setup: nothing,
        args: &["train", "--epochs", "1", "--out", "{d}/o", "--adapter", "no-such-gpu"],
        code: 1,
        needles: &["--adapter", "no-such-gpu"],
    },
    Case {
        name: "mixture k zero",
        setup: nothing,
        args: &["mixture", "--components", "0"],
        code: 1,
        needles: &["--components 0"],
    },
    Case {
        name: "mixture k above the data",
        setup: nothing,
        args: &["mixture", "--components", "9001", "--out", "{d}/m"],
        code: 1,
        needles: &["--components 9001", "9000"],
    },
    Case {
        name: "mixture tolerance negative",
        setup: nothing,
        args: &["mixture", "--tolerance=-1"],
        code: 1,
        needles: &["--tolerance"],
    },
    Case {
        name: "mixture iterations zero",
        setup: nothing,
        args: &["mixture", "--iterations", "0"],
        code: 1,
        needles: &["--iterations 0"],
    },
    Case {
        name: "nce noise missing",
        setup: nothing,
        args: &["nce", "--noise", "{d}/nothing"],
        code: 1,
        needles: &["{d}/nothing"],
    },
    Case {
        name: "nce noise is a vae",
        setup: nothing,
        args: &["nce", "--noise", "{run}", "--out", "{d}/n"],
        code: 1,
        needles: &["mixture"],
    },
    Case {
        name: "eval iw samples zero",
        setup: nothing,
        args: &["eval", "--checkpoint", "{run}", "--iw-samples", "0"],
        code: 1,
        needles: &["--iw-samples"],
    },
    Case {
        name: "sample count zero",
        setup: nothing,
        args: &["sample", "--checkpoint", "{run}", "--n", "0"],
        code: 1,
        needles: &["--n"],
    },
    Case {
        name: "resume of nothing",
        setup: nothing,
        args: &["train", "--resume", "{d}/none"],
        code: 1,
        needles: &["{d}/none"],
    },
    Case {
        name: "out is a file",
        setup: |d| write(d, "file", b"x"),
        args: &["train", "--out", "{d}/file"],
        code: 1,
        needles: &["--out", "{d}/file"],
    },
    // IDX files.
    Case {
        name: "data is a file",
        setup: |d| write(d, "f", b"x"),
        args: &["train", "--data", "{d}/f", "--out", "{d}/o"],
        code: 1,
        needles: &["{d}/f", "not a directory"],
    },
    Case {
        name: "gzip bomb beyond its header",
        setup: |d| idx_with_labels_and_images(d, &gzip(&idx(40, 4, 4, 64 << 20))),
        args: &["train", "--data", "{d}/data", "--out", "{d}/o"],
        code: 1,
        needles: &["train-images-idx3-ubyte.gz", "40 images of 4x4", "more bytes"],
    },
    Case {
        name: "images without pixels",
        setup: |d| idx_with_labels_and_images(d, &idx(40, 0, 4, 0)),
        args: &["train", "--data", "{d}/data"],
        code: 1,
        needles: &["0x4", "no pixels"],
    },
    Case {
        name: "header sizes overflow",
        setup: |d| idx_with_labels_and_images(d, &idx(u32::MAX, u32::MAX, u32::MAX, 16)),
        args: &["train", "--data", "{d}/data"],
        code: 1,
        needles: &["overflow"],
    },
    Case {
        name: "header cut short",
        setup: |d| idx_with_labels_and_images(d, &idx(40, 4, 4, 0)[..10]),
        args: &["train", "--data", "{d}/data"],
        code: 1,
        needles: &["train-images-idx3-ubyte", "header"],
    },
    Case {
        name: "labels with a bad checksum",
        setup: |d| {
            let mut l = gzip(&labels(40));
            let n = l.len();
            l[n - 6] ^= 0xff; // the CRC-32 in gzip's trailer
            write(d, "data/train-images-idx3-ubyte", &idx(40, 4, 4, 640));
            write(d, "data/train-labels-idx1-ubyte.gz", &l);
        },
        args: &["train", "--data", "{d}/data"],
        code: 1,
        needles: &["train-labels-idx1-ubyte.gz", "gzip"],
    },
    Case {
        name: "labels missing",
        setup: |d| write(d, "data/train-images-idx3-ubyte", &idx(40, 4, 4, 640)),
        args: &["train", "--data", "{d}/data"],
        code: 1,
        needles: &["missing train-labels-idx1-ubyte"],
    },
    Case {
        name: "labels long",
        setup: |d| idx_with_labels(d, &[labels(40), vec![0; 3]].concat()),
        args: &["train", "--data", "{d}/data"],
        code: 1,
        needles: &["40 labels", "more bytes"],
    },
    // Folders of images.
    Case {
        name: "empty folder",
        setup: |d| std::fs::create_dir_all(d.join("imgs")).expect("dir"),
        args: &["train", "--data", "{d}/imgs"],
        code: 1,
        needles: &["{d}/imgs"],
    },
    Case {
        name: "an image that is not one",
        setup: |d| {
            for i in 0..5 {
                write(d, &format!("imgs/a/{i}.png"), &png(8, 8));
            }
            write(d, "imgs/a/bad.png", b"\x89PNG\r\n\x1a\nnot really");
        },
        args: &["train", "--data", "{d}/imgs"],
        code: 1,
        needles: &["bad.png", "--skip-bad"],
    },
    Case {
        name: "images of two sizes",
        setup: |d| {
            write(d, "imgs/a/0.png", &png(8, 8));
            write(d, "imgs/a/1.png", &png(12, 8));
        },
        args: &["train", "--data", "{d}/imgs"],
        code: 1,
        needles: &["differ in size", "--image-size"],
    },
    // Checkpoints.
    Case {
        name: "checkpoint empty",
        setup: |d| write(d, "ck/model.safetensors", b""),
        args: &["sample", "--checkpoint", "{d}/ck/model.safetensors"],
        code: 1,
        needles: &["model.safetensors", "safetensors"],
    },
    Case {
        name: "checkpoint truncated",
        setup: |d| edited_checkpoint(d, |b| b.truncate(b.len() / 2)),
        args: &["eval", "--checkpoint", "{d}/ck/model.safetensors"],
        code: 1,
        needles: &["model.safetensors"],
    },
    Case {
        name: "checkpoint header length absurd",
        setup: |d| edited_checkpoint(d, |b| b[..8].copy_from_slice(&u64::MAX.to_le_bytes())),
        args: &["sample", "--checkpoint", "{d}/ck/model.safetensors"],
        code: 1,
        needles: &["model.safetensors", "not a valid safetensors file"],
    },
    Case {
        name: "checkpoint with a NaN",
        setup: |d| {
            edited_checkpoint(d, |b| {
                let at = header_len(b);
                b[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
            })
        },
        args: &["sample", "--checkpoint", "{d}/ck/model.safetensors"],
        code: 1,
        needles: &["non-finite", "flat index 0"],
    },
    Case {
        name: "checkpoint folder empty",
        setup: |d| std::fs::create_dir_all(d.join("ck")).expect("dir"),
        args: &["eval", "--checkpoint", "{d}/ck"],
        code: 1,
        needles: &["{d}/ck"],
    },
    Case {
        name: "checkpoint of random bytes",
        setup: |d| write(d, "ck/model.safetensors", &[7u8; 999]),
        args: &["refine", "--checkpoint", "{d}/ck/model.safetensors"],
        code: 1,
        needles: &["model.safetensors"],
    },
];

fn idx_with_labels_and_images(d: &Path, images: &[u8]) {
    write(d, "data/train-images-idx3-ubyte.gz", images);
    write(d, "data/train-labels-idx1-ubyte", &labels(40));
}
