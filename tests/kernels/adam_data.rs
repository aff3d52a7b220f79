//! shaders/adam.wgsl and shaders/data.wgsl: the optimizer and the batch gather.
use crate::common::*;
use wgvae::launches::data::Gather;

#[test]
fn adam_step_should_match_reference_in_both_variants() {
    // 1,000 parameters take adam_step_vec4 (four per invocation), 998 the scalar adam_step.
    for (n, entry) in [(1000, "adam_step_vec4"), (998, "adam_step")] {
        let (g, w0, m0) = (random(n, 23, 1.0), random(n, 24, 1.0), random(n, 25, 0.1));
        let v0: Vec<f32> = random(n, 26, 0.1).iter().map(|v| v * v).collect();
        let cfg = wgvae::config::AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
        let cb = gpu::storage_with(&gpu().0, "c", &[counters(4, 0)]);
        let (gb, wb, mb, vb) = (storage(&g), storage(&w0), storage(&m0), storage(&v0));
        let launch = wgvae::launches::adam_step(launcher(), &cfg, &cb, (&gb, &wb), (&mb, &vb), n);
        assert_eq!(launch.name, entry, "the variant for {n} parameters");
        run(launch);
        let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
        match n % 4 {
            0 => r::adam_step_vec4(&g, &mut w, &mut m, &mut v, 4, &cfg),
            _ => r::adam_step(&g, &mut w, &mut m, &mut v, 4, &cfg),
        }
        assert_close(&format!("{entry} weights"), &read(&wb, n), &w, 1e-6);
        assert_close(&format!("{entry} m"), &read(&mb, n), &m, 1e-6);
        assert_close(&format!("{entry} v"), &read(&vb, n), &v, 1e-6);
    }
}

#[test]
fn gather_batch_should_match_reference_in_every_binarize_mode_whole_and_sharded() {
    let (images_n, pixels) = (29usize, 84usize);
    let mut rng = rand::rngs::StdRng::seed_from_u64(27);
    let images: Vec<u8> = (0..images_n * pixels).map(|_| rng.random()).collect();
    let order: Vec<u32> = (0..20).map(|_| rng.random_range(0..images_n as u32)).collect();
    let c = counters(3, 10); // rows 10.. of a 20-row pass: the last 3 of 13 are padding
    for binarize in [wgvae::data::Binarize::None, wgvae::data::Binarize::Dynamic, wgvae::data::Binarize::Static] {
        // The whole set as one shard, then images 10..22 alone: rows of other images keep their 7s.
        for (first, count) in [(0, images_n), (10, 12)] {
            let shards = gpu::ImageShards {
                shards: vec![(
                    gpu::images_with(&gpu().0, "images", &images[first * pixels..(first + count) * pixels]),
                    first,
                    count,
                )],
                images: images_n,
            };
            let cb = gpu::storage_with(&gpu().0, "c", &[c]);
            let (ob, xb) = (gpu::storage_with(&gpu().0, "order", &order), storage(&vec![7.0; B * pixels]));
            let gather = Gather {
                images: &shards,
                order: &ob,
                counters: &cb,
                x: &xb,
                rows: B,
                pixels,
                pass_rows: 20,
                binarize,
                seed: 99,
            };
            assert_eq!(run_all(gather.launches(launcher())), [Entry::GatherBatch.name()], "one shard, one launch");
            let shard = &images[first * pixels..(first + count) * pixels];
            let mut want = vec![7.0; B * pixels];
            let draws = (binarize, 99, STREAM_BINARIZE);
            r::gather_batch(shard, (first, count), pixels, &order, (B, 20), draws, &c, &mut want);
            // byte / 255 is a division: WGSL allows 2.5 ulp.
            assert_ulps(
                &format!("gather_batch {binarize:?} shard {first}+{count}"),
                &read(&xb, B * pixels),
                &want,
                DIVISION_ULPS,
            );
        }
    }
}
