//! Seed 001's shallow latent variable model: a mixture of K product distributions over the pixels
//! (Bernoulli on grey levels, or diagonal Gaussian), fitted by EM on the GPU (em.rs,
//! shaders/mixture.wgsl). Here: the family, the sizes, the host's copy of a fitted mixture, the
//! seeded start from data points, and the prior that makes EM's M-step a posterior mode.
pub mod em;
pub mod file;

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use crate::data::{ImageShape, Split};
use crate::gpu::buffers::align_floats;
use crate::gpu::params::MixtureParams;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    /// mu_kd per pixel on grey levels in [0, 1], as the VAE's Bernoulli decoder.
    Bernoulli,
    /// Mean and variance per pixel (a density: not comparable with the Bernoulli's nats).
    Gaussian,
}

impl Family {
    pub fn code(self) -> u32 {
        match self {
            Family::Bernoulli => 0,
            Family::Gaussian => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Bernoulli => "bernoulli",
            Family::Gaussian => "gaussian",
        }
    }
}

/// What is fitted, and the prior's strengths.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spec {
    pub components: usize,
    pub family: Family,
    pub pixels: usize,
    /// A: Beta(1 + A, 1 + A) on every Bernoulli mu, Dirichlet(1 + A) on the weights.
    pub pseudo_count: f32,
    /// The Gaussian variances' floor.
    pub var_floor: f32,
}

impl Spec {
    /// F: values per row of the E-step's features ([x] or [x, x^2]).
    pub fn features(&self) -> usize {
        self.pixels * if self.family == Family::Gaussian { 2 } else { 1 }
    }

    /// K rounded up to a multiple of 4: the GPU's rows of components, so that the E-step's
    /// products take the vec4 kernels (K = 10 on the scalar ones left 246 of 256 columns idle).
    /// The padding components have weight 0 (DEAD_LOG_WEIGHT) and never gain any.
    pub fn padded(&self) -> usize {
        self.components.next_multiple_of(4)
    }

    /// Where the bias (and N_k) starts in nat (and stats): after W [padded K, F], aligned for binding.
    pub fn bias_at(&self) -> usize {
        align_floats(self.padded() * self.features())
    }

    pub fn stats_len(&self) -> usize {
        self.bias_at() + self.padded()
    }

    /// The kernels' parameters for `rows` rows from `first_row`, statistics over `total_rows`.
    pub fn params(&self, rows: usize, first_row: usize, total_rows: usize) -> MixtureParams {
        MixtureParams {
            rows: rows as u32,
            pixels: self.pixels as u32,
            components: self.padded() as u32,
            family: self.family.code(),
            first_row: first_row as u32,
            bias_at: self.bias_at() as u32,
            total_rows: total_rows as u32,
            pseudo_count: self.pseudo_count,
            var_floor: self.var_floor,
            live: self.components as u32,
        }
    }
}

/// A fitted mixture as the host reads it back: log_weights [K], means and variances [K, D]
/// (variances unused by the Bernoulli).
#[derive(Clone, Debug)]
pub struct Mixture {
    pub spec: Spec,
    pub shape: ImageShape,
    pub log_weights: Vec<f32>,
    pub means: Vec<f32>,
    pub variances: Vec<f32>,
}

/// A Bernoulli mean's distance from 0 and 1 where log q is taken or q sampled: log q stays
/// finite, and the sampler and log q use the same clamped means, so q is exactly what is sampled.
pub const MU_MIN: f64 = 1e-6;
/// A padding component's bias (shaders/mixture.wgsl's DEAD_LOG_WEIGHT).
const DEAD: f32 = -1e30;

impl Mixture {
    /// The same mixture with log weights that sum to one in f64 and Bernoulli means clamped into
    /// [MU_MIN, 1 - MU_MIN]: what a file's mixture is scored and sampled as.
    pub fn normalised(&self) -> Mixture {
        let top = self.log_weights.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let lse = top + self.log_weights.iter().map(|&l| (l as f64 - top).exp()).sum::<f64>().ln();
        let means = match self.spec.family {
            Family::Bernoulli => self.means.iter().map(|&mu| (mu as f64).clamp(MU_MIN, 1.0 - MU_MIN) as f32).collect(),
            Family::Gaussian => self.means.clone(),
        };
        Mixture {
            log_weights: self.log_weights.iter().map(|&l| (l as f64 - lse) as f32).collect(),
            means,
            ..self.clone()
        }
    }

    /// The E-step layer's weights [spec.stats_len()] (em::layer: natural parameters [K, F], then
    /// a bias per padded component) from these parameters, so that the log joints log pi_k +
    /// log p(x|k) are one linear product; the M-step writes the same on the GPU.
    pub fn e_step_weights(&self) -> Vec<f32> {
        let (spec, d) = (self.spec, self.spec.pixels);
        let f = spec.features();
        let mut nat = vec![0.0f32; spec.stats_len()];
        for k in 0..spec.padded() {
            if k >= spec.components {
                nat[spec.bias_at() + k] = DEAD;
                continue;
            }
            let mut bias = self.log_weights[k] as f64;
            for j in 0..d {
                let mu = self.means[k * d + j] as f64;
                match spec.family {
                    Family::Bernoulli => {
                        nat[k * f + j] = (mu.ln() - (1.0 - mu).ln()) as f32;
                        bias += (1.0 - mu).ln();
                    }
                    Family::Gaussian => {
                        let v = self.variances[k * d + j] as f64;
                        nat[k * f + j] = (mu / v) as f32;
                        nat[k * f + d + j] = (-0.5 / v) as f32;
                        bias -= 0.5 * (mu * mu / v + (std::f64::consts::TAU * v).ln());
                    }
                }
            }
            nat[spec.bias_at() + k] = bias as f32;
        }
        nat
    }

    /// log of the prior whose mode the M-step takes (up to its constant): A sum_k log pi_k, plus
    /// A sum_kd log mu + log(1 - mu) for the Bernoulli. EM never lets log-likelihood + this fall.
    pub fn log_prior(&self) -> f64 {
        let a = self.spec.pseudo_count as f64;
        let weights: f64 = self.log_weights.iter().map(|&l| l as f64).sum();
        let means = match self.spec.family {
            Family::Bernoulli => self.means.iter().map(|&m| (m as f64).ln() + (1.0 - m as f64).ln()).sum(),
            Family::Gaussian => 0.0,
        };
        a * (weights + means)
    }

    /// The components by weight, heaviest first: (k, pi_k).
    pub fn by_weight(&self) -> Vec<(usize, f64)> {
        let mut w: Vec<(usize, f64)> = self.log_weights.iter().map(|&l| (l as f64).exp()).enumerate().collect();
        w.sort_by(|a, b| b.1.total_cmp(&a.1));
        w
    }

    /// `n` draws x ~ sum_k pi_k p(x|k): a component by its weight, then every pixel (Bernoulli 0 or
    /// 1; Gaussian clamped to [0, 1] for the picture). Seeded, on the host: 64 images are no work.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let d = self.spec.pixels;
        let weights = self.by_weight();
        let mut out = Vec::with_capacity(n * d);
        for _ in 0..n {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let k = weights.iter().find(|(_, w)| {
                acc += w;
                acc > u
            });
            let k = k.unwrap_or(&weights[0]).0;
            for j in 0..d {
                let m = self.means[k * d + j];
                out.push(match self.spec.family {
                    Family::Bernoulli => (rng.random::<f32>() < m) as u8 as f32,
                    Family::Gaussian => {
                        let (u1, u2): (f32, f32) = (rng.random::<f32>().max(1e-12), rng.random());
                        let eps = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
                        (m + self.variances[k * d + j].sqrt() * eps).clamp(0.0, 1.0)
                    }
                });
            }
        }
        out
    }
}

/// K training rows chosen by k-means++ (Arthur & Vassilvitskii 2007) with `seed`: the first at
/// random, each next one with probability proportional to its squared distance from the nearest
/// chosen, so that the start rarely puts two components in one cluster. N K D integer operations
/// on the host, once (a second for K = 200 on 9,000 digits).
pub fn kmeans_plus_plus(train: &Split, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = train.len();
    let distance = |a: usize, b: usize| -> u64 {
        let (x, y) = (train.image(a), train.image(b));
        x.iter().zip(y).map(|(&p, &q)| (p as i32 - q as i32).pow(2) as u64).sum()
    };
    let mut rows = vec![rng.random_range(0..n)];
    let mut nearest: Vec<u64> = (0..n).map(|i| distance(i, rows[0])).collect();
    while rows.len() < k {
        let total: u64 = nearest.iter().sum();
        let next = if total == 0 {
            // Every row equals a chosen one: the rest at random among those not chosen.
            let free: Vec<usize> = (0..n).filter(|i| !rows.contains(i)).collect();
            free[sample(&mut rng, free.len(), 1).index(0)]
        } else {
            let mut target = rng.random_range(0..total);
            let mut pick = 0;
            for (i, &d) in nearest.iter().enumerate() {
                if target < d {
                    pick = i;
                    break;
                }
                target -= d;
            }
            pick
        };
        rows.push(next);
        for (i, d) in nearest.iter_mut().enumerate() {
            *d = (*d).min(distance(i, next));
        }
    }
    rows
}

/// The start: K training rows by k-means++, each a component's only member (N_k = 1), so the
/// first M-step makes each component that image, smoothed by the prior (the Gaussian's variances
/// start at the floor: the first E-step assigns as k-means would). Returns the statistics
/// [stats_len] the M-step reads, and the chosen rows.
pub fn initial_totals(spec: &Spec, train: &Split, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let rows = kmeans_plus_plus(train, spec.components, seed);
    let (d, f) = (spec.pixels, spec.features());
    let mut totals = vec![0.0; spec.stats_len()];
    for (k, &row) in rows.iter().enumerate() {
        for (j, &b) in train.image(row).iter().enumerate() {
            let v = b as f32 / 255.0;
            totals[k * f + j] = v;
            if spec.family == Family::Gaussian {
                totals[k * f + d + j] = v * v;
            }
        }
        totals[spec.bias_at() + k] = 1.0;
    }
    (totals, rows)
}
