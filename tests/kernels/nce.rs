//! shaders/nce.wgsl and NCE on the GPU (src/nce/): every kernel against its reference, the
//! loss's gradient (and the scorer's, through the layers) against finite differences, the noise
//! sampler's statistics, and a synthetic density whose log Z is known exactly.
use crate::common::*;
use wgvae::data::{ImageShape, Split};
use wgvae::launches::nce::NceRows;
use wgvae::mixture::{Family, Mixture, Spec};
use wgvae::nce::gpu::{GpuNce, NceSettings};
use wgvae::nce::{log_mean_exp, log_sum_exp, Base, Noise, Scorer};
use wgvae::reference::nce as rn;
use wgvae::reference::network::{backward_path, forward_path};

/// A mixture of `k` components over `d` pixels with seeded parameters (weights uneven).
fn mixture(family: Family, k: usize, d: usize, seed: u64) -> Mixture {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let raw: Vec<f64> = (0..k).map(|i| 1.0 + i as f64).collect();
    let total: f64 = raw.iter().sum();
    Mixture {
        spec: Spec { components: k, family, pixels: d, pseudo_count: 1.0, var_floor: 1e-3 },
        shape: ImageShape { channels: 1, height: 1, width: d },
        log_weights: raw.iter().map(|w| (w / total).ln() as f32).collect(),
        means: (0..k * d).map(|_| rng.random_range(0.05..0.95)).collect(),
        variances: (0..k * d).map(|_| rng.random_range(0.01..0.2)).collect(),
    }
}

fn params(family: Family, (data_rows, noise, noise_rows): (usize, usize, usize), d: usize, k: usize) -> NceParams {
    NceParams {
        data_rows: data_rows as u32,
        noise: noise as u32,
        noise_rows: noise_rows as u32,
        first_noise: data_rows as u32,
        pixels: d as u32,
        components: k as u32,
        family: family.code(),
        seed: 77,
        stream: 5,
        draw: 3,
        pass_rows: 10,
        training: 1,
        log_k: (noise as f32).ln(),
        base: 0,
        pad: [0; 2],
    }
}

/// Every buffer shaders/nce.wgsl binds, for `NceRows`: the noise, the rows and the per-row outputs.
struct Bufs {
    u: wgpu::Buffer,
    counters: wgpu::Buffer,
    log_weights: wgpu::Buffer,
    means: wgpu::Buffer,
    stds: wgpu::Buffer,
    component: wgpu::Buffer,
    x: wgpu::Buffer,
    score: wgpu::Buffer,
    log_q: wgpu::Buffer,
    d_score: wgpu::Buffer,
    row_loss: wgpu::Buffer,
    row_correct: wgpu::Buffer,
    totals: wgpu::Buffer,
}

/// The pass totals the loss tests start from.
const TOTALS: NceTotals = NceTotals { loss_sum: 1.5, correct_sum: 2.0, examples: 3.0, pad: 0.0 };

impl Bufs {
    fn new(p: &NceParams, c: Counters, noise: &Noise) -> Bufs {
        let g = &gpu().0;
        let rows = (p.first_noise + p.noise_rows) as usize;
        let zeros = |n: usize| gpu::zeroed::<f32>(g, "out", n);
        Bufs {
            u: uniform(p),
            counters: gpu::storage_with(g, "counters", &[c]),
            log_weights: storage(&noise.log_weights),
            means: storage(&noise.means),
            stds: storage(&noise.stds),
            component: gpu::zeroed::<u32>(g, "component", p.noise_rows as usize),
            x: gpu::zeroed::<f32>(g, "x", rows * p.pixels as usize),
            score: zeros(rows),
            log_q: zeros(rows),
            d_score: zeros(rows),
            row_loss: zeros(p.data_rows as usize),
            row_correct: zeros(p.data_rows as usize),
            totals: gpu::storage_with(g, "totals", &[TOTALS]),
        }
    }

    fn rows(&self) -> NceRows<'_> {
        NceRows {
            params: &self.u,
            counters: &self.counters,
            log_weights: &self.log_weights,
            means: &self.means,
            stds: &self.stds,
            component: &self.component,
            x: &self.x,
            score: &self.score,
            log_q: &self.log_q,
            d_score: &self.d_score,
            row_loss: &self.row_loss,
            row_correct: &self.row_correct,
            totals: &self.totals,
        }
    }

    fn draw(&self, p: &NceParams) {
        let (g, kernels) = gpu();
        let l = gpu::Launcher { gpu: g, kernels };
        submit(g, &[&self.rows().draw_noise(l, p.noise_rows as usize, p.pixels as usize)]).unwrap();
    }

    fn components(&self, n: usize) -> Vec<u32> {
        gpu::read(&gpu().0, &self.component, 0, n).unwrap()
    }
}

/// B = 13 data rows with k = 3 noise rows each, 83 pixels, K = 7; the cursor at 2 and 10 pass
/// rows, so the last 5 data rows are padding. Both families.
#[test]
fn nce_noise_and_features_should_match_reference() {
    let (g, kernels) = gpu();
    let l = gpu::Launcher { gpu: g, kernels };
    let (b, k, d, comps) = (13, 3, PIXELS, 7);
    let rows = b * (1 + k);
    let c = Counters { step: 5, cursor: 2, ..Counters::new() };
    for family in [Family::Bernoulli, Family::Gaussian] {
        let noise = Noise::new(&mixture(family, comps, d, 4));
        let p = params(family, (b, k, b * k), d, comps);
        let bufs = Bufs::new(&p, c, &noise);
        bufs.draw(&p);
        let want_components = rn::nce_pick_components(&p, &c, &noise.log_weights);
        let got_components = bufs.components(b * k);
        let differ = got_components.iter().zip(&want_components).filter(|(a, b)| a != b).count();
        assert!(differ <= 1, "{family:?}: {differ} of {} components differ from the reference", b * k);
        let mut want_x = vec![0.0; rows * d];
        rn::nce_sample_pixels(&p, &c, &noise.means, &noise.stds, &got_components, &mut want_x);
        let got_x = read(&bufs.x, rows * d);
        // Gaussian pixels are mean + std eps (Bernoulli ones compare uniforms: products only).
        let std = noise.stds.iter().fold(1.0f32, |m, &s| m.max(s));
        assert_close(&format!("{family:?} noise pixels"), &got_x, &want_x, DRAW_ABS * std);
        if family == Family::Bernoulli {
            assert!(got_x[b * d..].iter().all(|&v| v == 0.0 || v == 1.0), "Bernoulli noise is binary");
        }
        // Features of every row, from random x.
        let x = random(rows * d, 9, 2.0);
        g.queue.write_buffer(&bufs.x, 0, bytemuck::cast_slice(&x));
        let features = gpu::zeroed::<f32>(g, "features", rows * 2 * d);
        run(bufs.rows().features(l, &features, rows, d));
        assert_close("nce features", &read(&features, rows * 2 * d), &rn::nce_features(&p, &x), 0.0);
    }
}

/// The loss and the step's end on random scores, with and without the noise as the base; sizes
/// as above.
#[test]
fn nce_loss_and_step_end_should_match_reference() {
    let (g, kernels) = gpu();
    let l = gpu::Launcher { gpu: g, kernels };
    let (b, k, d, comps) = (13, 3, PIXELS, 7);
    let rows = b * (1 + k);
    let c = Counters { step: 5, cursor: 2, ..Counters::new() };
    let noise = Noise::new(&mixture(Family::Bernoulli, comps, d, 4));
    for base in [0, 1] {
        let p = NceParams { base, ..params(Family::Bernoulli, (b, k, b * k), d, comps) };
        let (score, log_q) = (random(rows, 10, 8.0), random(rows, 11, 8.0));
        let bufs = Bufs::new(&p, c, &noise);
        g.queue.write_buffer(&bufs.score, 0, bytemuck::cast_slice(&score));
        g.queue.write_buffer(&bufs.log_q, 0, bytemuck::cast_slice(&log_q));
        submit(g, &[&[bufs.rows().loss(l, b), bufs.rows().finish_step(l)]]).unwrap();
        let (want_d, want_loss, want_correct) = rn::nce_loss(&p, &c, &score, &log_q);
        assert_close("nce d_score", &read(&bufs.d_score, rows), &want_d, 1e-5);
        assert_close("nce row loss", &read(&bufs.row_loss, b), &want_loss, 1e-5);
        assert_close("nce row correct", &read(&bufs.row_correct, b), &want_correct, 0.0);
        assert!(
            want_loss[8..].iter().all(|&v| v == 0.0) && want_loss[..8].iter().all(|&v| v > 0.0),
            "rows 8.. are padding"
        );
        let (mut want_c, mut want_t) = (c, TOTALS);
        rn::nce_finish_step(&p, &mut want_c, &want_loss, &want_correct, &mut want_t);
        let got_t: NceTotals = gpu::read(g, &bufs.totals, 0, 1).unwrap()[0];
        let got_c: Counters = gpu::read(g, &bufs.counters, 0, 1).unwrap()[0];
        assert_eq!(got_c, want_c);
        assert_eq!((want_c.cursor, want_c.step, want_t.examples), (15, 6, 11.0));
        assert_close(
            "nce totals",
            &[got_t.loss_sum, got_t.correct_sum, got_t.examples],
            &[want_t.loss_sum, want_t.correct_sum, want_t.examples],
            1e-5,
        );
    }
}

/// d loss / d o of the reference loss against central differences of its f64 forward; then the
/// scorer's gradients (every weight, and the output bias, -dc) through the reference layers.
#[test]
fn nce_gradients_should_match_finite_differences() {
    let (b, k, d) = (5, 3, 12);
    let rows = b * (1 + k);
    let mut p = params(Family::Bernoulli, (b, k, b * k), d, 1);
    p.pass_rows = u32::MAX;
    let c = Counters::new();
    let (score, log_q) = (random(rows, 20, 3.0), random(rows, 21, 3.0));
    let h = 1e-3f32;
    for base in [0, 1] {
        let p = NceParams { base, ..p };
        let (d_score, _, _) = rn::nce_loss(&p, &c, &score, &log_q);
        for r in 0..rows {
            let (mut up, mut down) = (score.clone(), score.clone());
            up[r] += h;
            down[r] -= h;
            let fd = (rn::nce_batch_loss(&p, &up, &log_q) - rn::nce_batch_loss(&p, &down, &log_q)) / (2.0 * h as f64);
            assert!(
                (fd - d_score[r] as f64).abs() < 1e-3,
                "base {base} row {r}: finite difference {fd}, gradient {}",
                d_score[r]
            );
        }
    }
    let scorer = Scorer::new(d, &[6], Base::None);
    let weights = scorer.init_params(3, -2.0);
    let x = random(rows * d, 22, 1.0);
    let loss_of = |w: &[f32]| {
        let acts = forward_path(&scorer.layers, w, x.clone(), rows);
        rn::nce_batch_loss(&p, acts.last().expect("output"), &log_q)
    };
    let acts = forward_path(&scorer.layers, &weights, x.clone(), rows);
    let (d_o, _, _) = rn::nce_loss(&p, &c, acts.last().expect("output"), &log_q);
    let mut grads = vec![0.0f32; scorer.param_count];
    backward_path(&scorer.layers, &weights, Some(&mut grads), &acts, d_o, rows, false);
    let slots = scorer.tensors();
    for slot in &slots {
        for i in (slot.at..slot.at + slot.len()).step_by(5) {
            let (mut up, mut down) = (weights.clone(), weights.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (loss_of(&up) - loss_of(&down)) / (2.0 * h as f64);
            let tol = 2e-3 * (1.0 + fd.abs());
            assert!(
                (fd - grads[i] as f64).abs() < tol,
                "{} [{i}]: finite difference {fd}, gradient {}",
                slot.name,
                grads[i]
            );
        }
    }
}

/// 60,000 noise rows of a 3-component mixture over 8 pixels: each component as often as its
/// weight, and its pixels' mean (Bernoulli) or mean and variance (Gaussian), within 5 standard
/// errors.
#[test]
fn nce_noise_should_follow_the_mixture() {
    let (n, d, comps) = (60_000, 8, 3);
    for family in [Family::Bernoulli, Family::Gaussian] {
        let m = mixture(family, comps, d, 8);
        let noise = Noise::new(&m);
        let p = params(family, (0, 1, n), d, comps);
        let bufs = Bufs::new(&p, Counters::new(), &noise);
        bufs.draw(&p);
        let component = bufs.components(n);
        let x = read(&bufs.x, n * d);
        for kk in 0..comps {
            let w = (noise.log_weights[kk] as f64).exp();
            let rows: Vec<usize> = (0..n).filter(|&r| component[r] as usize == kk).collect();
            let freq = rows.len() as f64 / n as f64;
            let se = (w * (1.0 - w) / n as f64).sqrt();
            assert!((freq - w).abs() < 5.0 * se, "{family:?} component {kk}: frequency {freq}, weight {w}");
            for j in 0..d {
                let values: Vec<f64> = rows.iter().map(|&r| x[r * d + j] as f64).collect();
                let count = values.len() as f64;
                let mean = values.iter().sum::<f64>() / count;
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0);
                let mu = noise.means[kk * d + j] as f64;
                let true_var = match family {
                    Family::Bernoulli => mu * (1.0 - mu),
                    Family::Gaussian => (noise.stds[kk * d + j] as f64).powi(2),
                };
                let se_mean = (true_var / count).sqrt();
                assert!((mean - mu).abs() < 5.0 * se_mean, "{family:?} component {kk} pixel {j}: mean {mean}, mu {mu}");
                if family == Family::Gaussian {
                    let se_var = true_var * (2.0 / (count - 1.0)).sqrt();
                    assert!(
                        (var - true_var).abs() < 5.0 * se_var,
                        "component {kk} pixel {j}: variance {var} vs {true_var}"
                    );
                }
            }
        }
    }
}

/// Every binary image of `d` pixels, bit j of i at pixel j.
fn all_binary_images(d: usize) -> Vec<f32> {
    (0..1usize << d).flat_map(|i| (0..d).map(move |j| ((i >> j) & 1) as f32)).collect()
}

/// Data from a known 3-component Bernoulli mixture over 12 pixels (4,096 states, so every sum is
/// exact), noise from another, broader one. After training: the scorer's exact log sum exp(o)
/// (0 if NCE self-normalised, that is log Z = c) is within 0.1 of 0, the importance-sampled
/// estimate of it from the noise within 4 standard errors of the exact value, and the model's
/// normalised density within 0.05 nats (KL) of the data's.
#[test]
fn nce_should_recover_log_z_of_a_known_density() {
    for base in [Base::None, Base::Noise] {
        recover_log_z(base);
    }
}

fn recover_log_z(base: Base) {
    let (g, kernels) = gpu();
    let d = 12;
    let truth = mixture(Family::Bernoulli, 3, d, 30);
    let truth_noise = Noise::new(&truth);
    let draw = |n: usize, seed: u64| -> Split {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let weights: Vec<f64> = truth_noise.log_weights.iter().map(|&l| (l as f64).exp()).collect();
        let mut images = Vec::with_capacity(n * d);
        for _ in 0..n {
            let (u, mut acc): (f64, f64) = (rng.random(), 0.0);
            let kk = weights
                .iter()
                .position(|w| {
                    acc += w;
                    acc > u
                })
                .unwrap_or(2);
            images.extend((0..d).map(|j| if rng.random::<f32>() < truth.means[kk * d + j] { 255u8 } else { 0 }));
        }
        Split { labels: vec![0; n], images, pixels: d }
    };
    let (train, val) = (draw(6000, 31), draw(500, 32));
    let mut q = mixture(Family::Bernoulli, 2, d, 33);
    q.means.iter_mut().for_each(|m| *m = 0.3 + 0.4 * *m);
    let noise = Noise::new(&q);
    let scorer = Scorer::new(d, &[32], base);
    let adam = wgvae::config::AdamConfig { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let settings = NceSettings { batch: 50, noise: 5, adam, seed: 5 };
    let initial = scorer.init_params(5, if base == Base::None { -(d as f32) * 0.6 } else { 0.0 });
    let nce = GpuNce::new((g, kernels), (scorer.clone(), noise.clone(), settings), (&train, &val), &initial).unwrap();
    for epoch in 0..30 {
        nce.start_epoch(
            g,
            &(0..train.len() as u32).map(|i| (i * 7919 + epoch * 31) % train.len() as u32).collect::<Vec<_>>(),
        );
        nce.train_steps(g, nce.steps_per_epoch).unwrap();
    }
    let params = nce.read_params(g).unwrap();
    let states = all_binary_images(d);
    let o = forward_path(&scorer.layers, &params, states.clone(), 1 << d).pop().expect("output");
    let o: Vec<f64> =
        (0..1usize << d).map(|i| scorer.log_density(o[i], noise.log_q(&states[i * d..(i + 1) * d]) as f32)).collect();
    let exact = log_sum_exp(&o);
    let est = log_mean_exp(&nce.noise_log_ratios((g, kernels), 20_000).unwrap());
    let kl: f64 = (0..1usize << d)
        .map(|i| {
            let log_p = truth_noise.log_q(&states[i * d..(i + 1) * d]);
            log_p.exp() * (log_p - (o[i] - exact))
        })
        .sum();
    println!(
        "{base:?}: exact log sum exp(l) {exact:.4}, estimate {:.4} +- {:.4}, KL {kl:.4}, c {}",
        est.value,
        est.stderr,
        scorer.c(&params)
    );
    assert!(exact.abs() < 0.1, "NCE did not self-normalise: log sum exp(o) = {exact}");
    assert!((est.value - exact).abs() < 4.0 * est.stderr + 1e-3, "IS {} +- {} vs exact {exact}", est.value, est.stderr);
    assert!(kl < 0.05, "KL(data || model) = {kl}");
}
