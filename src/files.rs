//! Writing files so that a reader, or a crash, sees the old file or the new one, never a mix.
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to `path` so that a reader (or a crash) sees the old file or the new one,
/// never a mix: a temp file beside it, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp_name = path.file_name().with_context(|| format!("{}: not a file path", path.display()))?.to_os_string();
    tmp_name.push(".partial");
    let tmp = path.with_file_name(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    // A failed write (a full disk, say) leaves the old file as it was and no partial one.
    if let Err(e) = write() {
        std::fs::remove_file(&tmp).ok();
        return Err(e)
            .with_context(|| format!("writing {} (any earlier {} is untouched)", tmp.display(), path.display()));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        std::fs::remove_file(&tmp).ok();
        return Err(e).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Makes the rename itself durable; not every filesystem supports it, and it is not needed
        // for atomicity, so a failure here is not an error.
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().ok();
        }
    }
    Ok(())
}

/// 8-bit pixels (`color` L8 or Rgb8, row-major) as a PNG file's bytes.
pub fn png_bytes(pixels: &[u8], (width, height): (u32, u32), color: image::ExtendedColorType) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(pixels, width, height, color)
        .with_context(|| format!("encoding a {width} x {height} PNG"))?;
    Ok(png)
}

/// Encodes 8-bit pixels as PNG (png_bytes) and writes them atomically.
pub fn write_png(path: &Path, pixels: &[u8], size: (u32, u32), color: image::ExtendedColorType) -> Result<()> {
    write_atomic(path, &png_bytes(pixels, size, color).with_context(|| format!("{}", path.display()))?)
}
