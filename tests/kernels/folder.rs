//! A folder of PNGs through the loader and onto the GPU: the u8 values survive decoding (as
//! channel-major planes) and gather_batch returns them exactly, / 255.
use crate::common::*;
use wgvae::data::cache::CacheState;
use wgvae::data::{folder, FolderOptions, ImageShape};

fn pixels_of(h: usize, w: usize) -> usize {
    3 * h * w
}
use wgvae::launches::Gather;

#[test]
fn png_folder_values_should_reach_the_gathered_batch_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (h, w) = (6usize, 10usize);
    let value = |i: usize, c: usize, y: usize, x: usize| ((i * 37 + c * 101 + y * 13 + x * 7) % 256) as u8;
    let mut expected = Vec::new(); // channel-major planes, in the loader's order (class, then file name)
    for (class, first) in [("a", 0), ("b", 5)] {
        let d = dir.path().join("train").join(class);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::create_dir_all(dir.path().join("val").join(class)).expect("dir");
        for i in first..first + 5 {
            let img = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
                image::Rgb([0, 1, 2].map(|c| value(i, c, y as usize, x as usize)))
            });
            img.save(d.join(format!("{i:02}.png"))).expect("save");
            img.save(dir.path().join("val").join(class).join(format!("{i:02}.png"))).expect("save");
            expected.extend((0..3).flat_map(|c| (0..h).flat_map(move |y| (0..w).map(move |x| value(i, c, y, x)))));
        }
    }
    let cache_file = dir.path().join("cache.bin");
    let load =
        || folder::load_with_cache(dir.path(), "test folder", &FolderOptions::default(), Some(cache_file.clone()));
    let (data, state) = load().expect("load");
    assert_eq!(state, CacheState::Written(cache_file.clone(), "none yet".into()));
    assert_eq!(data.shape, ImageShape { channels: 3, height: h, width: w });
    assert_eq!(data.class_names, Some(vec!["a".to_string(), "b".to_string()]));
    assert_eq!(data.train.labels, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    assert_eq!(data.train.images, expected, "decoded values, channel-major");
    let (cached, state) = load().expect("load from the cache");
    assert_eq!(state, CacheState::Hit(cache_file.clone()));
    assert_eq!((&cached.train.images, &cached.val.labels), (&data.train.images, &data.val.labels));
    // A changed file makes the cache stale; a truncated cache is rebuilt.
    image::RgbImage::new(w as u32, h as u32).save(dir.path().join("train/a/00.png")).expect("save");
    let (changed, state) = load().expect("load after a change");
    assert!(matches!(state, CacheState::Written(_, ref why) if why.starts_with("stale")), "{state:?}");
    assert_eq!(changed.train.images[..pixels_of(h, w)], vec![0u8; pixels_of(h, w)][..]);
    let bytes = std::fs::read(&cache_file).expect("cache");
    std::fs::write(&cache_file, &bytes[..bytes.len() - 1]).expect("truncate");
    let (_, state) = load().expect("load after truncation");
    assert!(matches!(state, CacheState::Written(_, ref why) if why.contains("truncated")), "{state:?}");
    let mut other_version = std::fs::read(&cache_file).expect("cache");
    other_version[7] = b'0';
    std::fs::write(&cache_file, other_version).expect("write");
    let (_, state) = load().expect("load after a version change");
    assert!(matches!(state, CacheState::Written(_, ref why) if why.contains("version")), "{state:?}");
    let data = changed;
    let expected = data.train.images.clone();

    let (g, k) = gpu();
    let l = wgvae::gpu::Launcher { gpu: g, kernels: k };
    let pixels = data.shape.pixels();
    let rows = 7; // not a multiple of the 64-wide workgroup, nor of the 10 images
    let images = gpu::ImageShards::new(g, "images", &data.train.images, pixels);
    let order_ids: Vec<u32> = (0..10).rev().collect();
    let order = gpu::storage_with(g, "order", &order_ids);
    let counters = gpu::storage_with(g, "counters", &[Counters::new()]);
    let x = gpu::zeroed::<f32>(g, "x", rows * pixels);
    let binarize = wgvae::data::Binarize::None;
    let gather = Gather {
        images: &images,
        order: &order,
        counters: &counters,
        x: &x,
        rows,
        pixels,
        pass_rows: 10,
        binarize,
        seed: 1,
    };
    for launch in gather.launches(l) {
        run(launch);
    }
    let got = read(&x, rows * pixels);
    let want: Vec<f32> = order_ids[..rows]
        .iter()
        .flat_map(|&i| expected[i as usize * pixels..(i as usize + 1) * pixels].iter().map(|&v| v as f32 / 255.0))
        .collect();
    // byte / 255: a division, 2.5 ulp in WGSL.
    assert_ulps("gathered folder images", &got, &want, DIVISION_ULPS);
}
