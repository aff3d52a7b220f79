//! Mutation fuzzing of the parsers a user's files reach: IDX (raw and gzipped), checkpoints, the
//! image-folder reader's header and decode, and the decoded-image cache. Each case mutates a
//! valid file (bit flips, interesting integers in place of numbers and words, inserted, deleted,
//! duplicated and truncated runs) and hands it to the parser, which must return Ok or an error,
//! never panic. WGVAE_FUZZ_CASES sets the cases per target (default 20,000: under a second in a
//! release build, a few seconds in a debug one);
//! `WGVAE_FUZZ_CASES=260000 cargo test --release --test cli fuzz -- --nocapture` is the long run
//! (1.04 M cases, about 13 s).
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgvae::data::{cache, folder, idx, ImageShape};

use super::checkpoints::trained;

const INTERESTING: [u64; 12] = [0, 1, 2, 3, 4, 7, 255, 256, 65_535, 0x7fff_ffff, 0xffff_ffff, u64::MAX];

fn cases() -> usize {
    std::env::var("WGVAE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
}

/// One mutation of `seed`, mostly inside its first `hot` bytes (the header, where parsing happens).
fn mutate(seed: &[u8], hot: usize, rng: &mut StdRng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = b.len().max(1);
        let at = if rng.random_bool(0.7) { rng.random_range(0..hot.clamp(1, len)) } else { rng.random_range(0..len) };
        let last = b.len().saturating_sub(1);
        match rng.random_range(0..8) {
            0 | 1 if !b.is_empty() => b[at.min(last)] ^= 1 << rng.random_range(0..8),
            2 if !b.is_empty() => b[at.min(last)] = rng.random(),
            3 => {
                // An interesting integer over 4 bytes, big- or little-endian (IDX, safetensors).
                let v = INTERESTING[rng.random_range(0..INTERESTING.len())] as u32;
                let bytes = if rng.random_bool(0.5) { v.to_be_bytes() } else { v.to_le_bytes() };
                for (i, x) in bytes.into_iter().enumerate() {
                    if let Some(slot) = b.get_mut(at + i) {
                        *slot = x;
                    }
                }
            }
            4 => {
                // A run of ASCII digits (a JSON number) replaced by an interesting one.
                let digits = b[at.min(b.len())..].iter().position(u8::is_ascii_digit).map(|p| p + at);
                if let Some(start) = digits {
                    let end = b[start..].iter().position(|c| !c.is_ascii_digit()).map_or(b.len(), |p| p + start);
                    let v = INTERESTING[rng.random_range(0..INTERESTING.len())];
                    let text = if rng.random_bool(0.2) { format!("-{v}") } else { v.to_string() };
                    b.splice(start..end, text.into_bytes());
                }
            }
            5 => {
                let n = rng.random_range(1..=16);
                let at = at.min(b.len());
                b.splice(at..at, (0..n).map(|_| rng.random::<u8>()));
            }
            6 => {
                let end = (at + rng.random_range(1..=64)).min(b.len());
                b.drain(at.min(end)..end);
            }
            _ => {
                let n = rng.random_range(0..=b.len());
                if rng.random_bool(0.5) {
                    b.truncate(n);
                } else {
                    let run: Vec<u8> = b[at.min(b.len())..].iter().take(64).copied().collect();
                    let at = n.min(b.len());
                    b.splice(at..at, run);
                }
            }
        }
    }
    b
}

/// Runs `parse` on `cases()` mutations of each seed; panics (after all cases) naming the first
/// input that made it panic, written to a file for replay. `parse` says whether it accepted the
/// input: the count shows how many mutations got through every check.
fn fuzz(target: &str, seeds: &[(Vec<u8>, usize)], parse: impl Fn(&[u8]) -> bool) {
    let mut rng = StdRng::seed_from_u64(0x5eed ^ target.len() as u64);
    let (n, started) = (cases(), std::time::Instant::now());
    let (mut panics, mut accepted, mut first) = (0usize, 0usize, None);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for case in 0..n {
        let (seed, hot) = &seeds[case % seeds.len()];
        let input = mutate(seed, *hot, &mut rng);
        match catch_unwind(AssertUnwindSafe(|| parse(&input))) {
            Ok(ok) => accepted += ok as usize,
            Err(_) => {
                panics += 1;
                first.get_or_insert((case, input));
            }
        }
    }
    std::panic::set_hook(hook);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("fuzz {target}: {n} cases in {seconds:.1} s, {accepted} accepted, {panics} panics");
    if let Some((case, input)) = first {
        let path = std::env::temp_dir().join(format!("wgvae-fuzz-{target}-{case}.bin"));
        std::fs::write(&path, &input).ok();
        panic!("fuzz {target}: {panics} of {n} inputs panicked; the first (case {case}) is in {}", path.display());
    }
}

fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b: Vec<u8> = [2051u32, count, rows, cols].iter().flat_map(|v| v.to_be_bytes()).collect();
    b.extend((0..count * rows * cols).map(|i| (i * 37 % 256) as u8));
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

#[test]
fn fuzzed_idx_files_should_give_errors_never_panics() {
    let images = idx_images(3, 4, 4);
    let mut labels: Vec<u8> = [2049u32, 3].iter().flat_map(|v| v.to_be_bytes()).collect();
    labels.extend([1, 2, 3]);
    let seeds = [(images.clone(), 16), (gzip(&images), 24), (labels.clone(), 8), (gzip(&labels), 24)];
    fuzz("idx", &seeds, |b| idx::parse_images(b, "fuzz").is_ok() | idx::parse_labels(b, "fuzz").is_ok());
}

#[test]
fn fuzzed_checkpoints_should_give_errors_never_panics() {
    let bytes = std::fs::read(trained().join(wgvae::checkpoint::MODEL_FILE)).expect("checkpoint");
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    fuzz("checkpoint", &[(bytes, header)], |b| wgvae::checkpoint::from_bytes(b).is_ok());
}

fn encoded(format: image::ImageFormat, color: image::ColorType) -> Vec<u8> {
    let (w, h) = (7u32, 5u32);
    let img: image::DynamicImage = match color {
        image::ColorType::Rgb8 => {
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 9])).into()
        }
        _ => image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 30 + y * 11) as u8])).into(),
    };
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

#[test]
fn fuzzed_images_should_give_errors_never_panics() {
    use image::{ColorType, ImageFormat};
    let mut seeds = Vec::new();
    for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Bmp, ImageFormat::WebP] {
        for color in [ColorType::L8, ColorType::Rgb8] {
            seeds.push((encoded(format, color), 64));
        }
    }
    let shapes = [ImageShape { channels: 1, height: 4, width: 4 }, ImageShape { channels: 3, height: 5, width: 7 }];
    fuzz("image", &seeds, |b| {
        folder::header_of_bytes(b, "fuzz").is_ok()
            && shapes.iter().map(|&shape| folder::decode_bytes(b, "fuzz", shape).is_ok()).fold(false, |a, ok| a | ok)
    });
}

#[test]
fn fuzzed_caches_should_give_errors_never_panics() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (class, n) in [("a", 6), ("b", 6)] {
        std::fs::create_dir_all(dir.path().join(class)).expect("dir");
        for i in 0..n {
            let png = encoded(image::ImageFormat::Png, image::ColorType::L8);
            std::fs::write(dir.path().join(class).join(format!("{i}.png")), png).expect("write");
        }
    }
    let opts = folder::FolderOptions { size: Some((4, 4)), ..Default::default() };
    let (data, _) = folder::load_with_cache(dir.path(), "fuzz", &opts, None).expect("folder");
    let bytes = cache::encode(&data, 42);
    fuzz("cache", &[(bytes, 96)], |b| cache::decode(b, 42, "fuzz").is_ok());
}
