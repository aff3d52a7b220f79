//! shaders/categorical.wgsl through its launcher (launches/categorical.rs): Gumbel-softmax and the
//! categorical KL.
use crate::common::*;
use wgvae::launches::categorical::CategoricalRows;
use wgvae::reference::categorical as rcat;

// 13 rows x 3 groups of 7 categories (21 columns, not a multiple of 4).
const ROWS: usize = 13;
const GROUPS: usize = 3;
const CATS: usize = 7;

fn params() -> CategoricalParams {
    CategoricalParams {
        rows: ROWS as u32,
        groups: GROUPS as u32,
        categories: CATS as u32,
        seed: 21,
        stream: 0,
        anneal_steps: 10,
        tau_start: 2.0,
        tau_end: 0.5,
        beta: 0.8,
        warmup_steps: 8,
        sample_scale: 0.5,
        pad: 0,
    }
}

/// The test buffers: counters, and logits, d_logits, noise, z, dz (as many values as logits).
struct Rows {
    counters: wgpu::Buffer,
    bufs: [wgpu::Buffer; 5],
}

impl Rows {
    fn new(c: &Counters, logits: &[f32]) -> Rows {
        let n = logits.len();
        let zeros = || storage(&vec![0.0; n]);
        let counters = gpu::storage_with(&gpu().0, "c", &[*c]);
        Rows { counters, bufs: [storage(logits), zeros(), zeros(), zeros(), zeros()] }
    }

    /// The launcher over these buffers.
    fn launcher(&self, p: &CategoricalParams) -> CategoricalRows<'_> {
        let [logits, d_logits, noise, z, dz] = &self.bufs;
        let (rows, groups, counters) = (p.rows as usize, p.groups as usize, &self.counters);
        CategoricalRows { rows, groups, counters, logits, d_logits, noise, z, dz }
    }
}

fn l() -> gpu::Launcher<'static> {
    gpu::Launcher { gpu: &gpu().0, kernels: &gpu().1 }
}

#[test]
fn gumbel_softmax_and_categorical_kl_should_match_reference() {
    let (p, c) = (params(), counters(4, 26));
    let n = ROWS * GROUPS * CATS;
    let logits = random(n, 90, 3.0);
    let (bufs, u) = (Rows::new(&c, &logits), uniform(&p));
    let [_, db, nb, zb, dzb] = &bufs.bufs;
    run(bufs.launcher(&p).sample(l(), &u));
    let (noise, z) = rcat::gumbel_softmax_forward(&p, &logits, &c);
    assert_close("gumbel noise", &read(nb, n), &noise, 1e-5);
    assert_close("gumbel_softmax_forward", &read(zb, n), &z, 1e-5);
    let dz = random(n, 91, 1.0);
    gpu().0.queue.write_buffer(dzb, 0, bytemuck::cast_slice(&dz));
    run(bufs.launcher(&p).sample_backward(l(), &u));
    let mut want = rcat::gumbel_softmax_backward(&p, &z, &dz, &c);
    assert_close("gumbel_softmax_backward", &read(db, n), &want, 1e-5);
    let kb = storage(&[0.0; ROWS]);
    run(bufs.launcher(&p).kl_forward(l(), &u, &kb));
    assert_close("categorical_kl_forward", &read(&kb, ROWS), &rcat::categorical_kl_forward(&p, &logits), 1e-5);
    run(bufs.launcher(&p).kl_backward(l(), &u));
    rcat::categorical_kl_backward(&p, &logits, &mut want, &c);
    assert_close("categorical_kl_backward", &read(db, n), &want, 1e-5);
    assert!(
        (rcat::temperature(&p, 0) - 2.0).abs() < 1e-6
            && (rcat::temperature(&p, 5) - 1.0).abs() < 1e-5
            && (rcat::temperature(&p, 50) - 0.5).abs() < 1e-6,
        "geometric annealing from 2 to 0.5 over 10 steps"
    );
}

#[test]
fn categorical_backward_references_should_match_finite_differences() {
    let (p, c) = (CategoricalParams { rows: 2, ..params() }, counters(4, 0));
    let n = 2 * GROUPS * CATS;
    let logits = random(n, 92, 2.0);
    let (noise, _) = rcat::gumbel_softmax_forward(&p, &logits, &c);
    let probe = random(n, 93, 1.0);
    // L = probe . y(logits) with the Gumbel noise held fixed, plus the weighted KL.
    let w = r::kl_weight(p.beta, p.warmup_steps, c.step) * p.sample_scale;
    let tau = rcat::temperature(&p, c.step);
    let loss = |l: &[f32]| {
        let y: Vec<f32> = l
            .chunks(CATS)
            .zip(noise.chunks(CATS))
            .flat_map(|(lg, g)| {
                let s: Vec<f64> = lg.iter().zip(g).map(|(a, b)| ((a + b) / tau) as f64).collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let t: f64 = s.iter().map(|v| (v - m).exp()).sum();
                s.into_iter().map(move |v| ((v - m).exp() / t) as f32)
            })
            .collect();
        dot(&probe, &y) + w as f64 * rcat::categorical_kl_forward(&p, l).iter().map(|&v| v as f64).sum::<f64>()
    };
    let (_, y) = rcat::gumbel_softmax_forward(&p, &logits, &c);
    let mut analytic = rcat::gumbel_softmax_backward(&p, &y, &probe, &c);
    rcat::categorical_kl_backward(&p, &logits, &mut analytic, &c);
    check_grad("categorical dlogits", &loss, &always, &logits, &analytic);
}

/// The Gumbel-max trick: argmax_k (logits_k + g_k) is distributed as softmax(logits), so the
/// GPU's Gumbel noise must give each category its probability (within 5 standard errors).
#[test]
fn gumbel_noise_should_pick_categories_with_softmax_probabilities() {
    let rows = 2000;
    let p = CategoricalParams { rows: rows as u32, groups: 1, categories: 4, ..params() };
    let base = [1.0f32, 0.0, -1.0, 0.5];
    let logits: Vec<f32> = (0..rows).flat_map(|_| base).collect();
    let bufs = Rows::new(&counters(0, 0), &logits);
    run(bufs.launcher(&p).sample(l(), &uniform(&p)));
    let noise = read(&bufs.bufs[2], rows * 4);
    let mut counts = [0usize; 4];
    for r in 0..rows {
        let k = (0..4)
            .max_by(|&a, &b| (base[a] + noise[r * 4 + a]).total_cmp(&(base[b] + noise[r * 4 + b])))
            .expect("4 categories");
        counts[k] += 1;
    }
    let total: f64 = base.iter().map(|&l| (l as f64).exp()).sum();
    for k in 0..4 {
        let prob = (base[k] as f64).exp() / total;
        let se = (prob * (1.0 - prob) / rows as f64).sqrt();
        let freq = counts[k] as f64 / rows as f64;
        assert!((freq - prob).abs() < 5.0 * se, "category {k}: frequency {freq} vs softmax probability {prob}");
    }
}
