//! Noise-contrastive estimation (seed 004) of an unnormalized model u(x) = exp(s(x)): an MLP tells
//! data from k draws of a fitted mixture q per data point, with the log-normaliser c learned as
//! a parameter (the scalar layer's bias is -c). The model's log density l(x) = s(x) - c, if NCE
//! self-normalised, is the network's output o(x), or log q(x) + o(x) with the noise as the base.
//! Here: the scorer's layers, the noise as the GPU samples and scores it, and the
//! importance-sampling estimate of log Z with q as the proposal.
//! gpu.rs runs it (shaders/nce.wgsl); reference/nce.rs mirrors the kernels.
pub mod file;
pub mod gpu;
mod launches;
pub mod report;

use rand::{Rng, SeedableRng};

use crate::gpu::buffers::align_floats;
use crate::mixture::{Family, Mixture, Spec};
use crate::network::{Layer, LayerKind, TensorSlot};

/// What the network's output o(x) is added to in the model's log density.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Base {
    /// l(x) = log q(x) + o(x): the network learns the correction to the noise, which starts the
    /// model at q and keeps the data/noise log-odds free of log q's large spread.
    Noise,
    /// l(x) = o(x): the notes' plain unnormalized model.
    None,
}

impl Base {
    pub fn name(self) -> &'static str {
        match self {
            Base::Noise => "noise",
            Base::None => "none",
        }
    }

    pub fn parse(name: &str) -> Option<Base> {
        [Base::Noise, Base::None].into_iter().find(|b| b.name() == name)
    }
}

/// s(x) as layers: D -> hidden... (ReLU) -> 1, in one flat parameter buffer, and its base.
#[derive(Clone, Debug)]
pub struct Scorer {
    pub layers: Vec<Layer>,
    pub param_count: usize,
    pub base: Base,
}

impl Scorer {
    pub fn new(pixels: usize, hidden: &[usize], base: Base) -> Scorer {
        let widths: Vec<usize> = std::iter::once(pixels).chain(hidden.iter().copied()).chain([1]).collect();
        let mut at = 0;
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let relu = i + 2 < widths.len();
                let mut layer = Layer {
                    kind: LayerKind::Linear,
                    n_in: w[0],
                    n_out: w[1],
                    relu,
                    relu_input: i > 0,
                    weight_at: at,
                    bias_at: 0,
                };
                at += align_floats(layer.weight_len());
                layer.bias_at = at;
                at += align_floats(layer.bias_len());
                layer
            })
            .collect();
        Scorer { layers, param_count: at, base }
    }

    /// "784-400-1 added to log q": the widths, and the base.
    pub fn describe(&self) -> String {
        let widths: Vec<String> = std::iter::once(self.layers[0].n_in)
            .chain(self.layers.iter().map(|l| l.n_out))
            .map(|w| w.to_string())
            .collect();
        let base = if self.base == Base::Noise { " added to log q" } else { "" };
        format!("{}{base}", widths.join("-"))
    }

    pub fn output(&self) -> &Layer {
        self.layers.last().expect("a scorer has its output layer")
    }

    /// PyTorch's nn.Linear initialisation, except the output's bias: `output_bias`. With the noise
    /// as the base, 0 starts the model at q; without, the noise's mean log q starts it near q's
    /// scale, the classifier near the prior odds 1 : k.
    pub fn init_params(&self, seed: u64, output_bias: f32) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut params = vec![0.0f32; self.param_count];
        for layer in &self.layers {
            let bound = 1.0 / (layer.fan_in() as f32).sqrt();
            for w in &mut params[layer.weight_at..layer.weight_at + layer.weight_len()] {
                *w = rng.random_range(-bound..bound);
            }
            for b in &mut params[layer.bias_at..layer.bias_at + layer.bias_len()] {
                *b = rng.random_range(-bound..bound);
            }
        }
        params[self.output().bias_at] = output_bias;
        params
    }

    /// The learned log-normaliser c (minus the output's bias).
    pub fn c(&self, params: &[f32]) -> f32 {
        -params[self.output().bias_at]
    }

    /// The model's log density l(x) from the network's output o(x) and the noise's log q(x).
    pub fn log_density(&self, o: f32, log_q: f32) -> f64 {
        match self.base {
            Base::Noise => log_q as f64 + o as f64,
            Base::None => o as f64,
        }
    }

    /// The layers' tensors, named score.<i>.weight and score.<i>.bias.
    pub fn tensors(&self) -> Vec<TensorSlot> {
        self.layers.iter().enumerate().flat_map(|(i, l)| l.tensors(&format!("score.{i}"))).collect()
    }
}

/// The noise q as the GPU uses it: normalised log weights [K], means and standard deviations
/// [K, D] (Mixture::normalised's, Bernoulli means clamped), and the E-step layer's weights
/// `nat` [spec.stats_len()] (shaders/mixture.wgsl), so that log q(x) is one linear product and a
/// log-sum-exp.
#[derive(Clone, Debug)]
pub struct Noise {
    pub spec: Spec,
    pub log_weights: Vec<f32>,
    pub means: Vec<f32>,
    pub stds: Vec<f32>,
    pub nat: Vec<f32>,
}

impl Noise {
    pub fn new(m: &Mixture) -> Noise {
        let q = m.normalised();
        let stds = match q.spec.family {
            Family::Bernoulli => vec![0.0; q.means.len()],
            Family::Gaussian => q.variances.iter().map(|&v| v.sqrt()).collect(),
        };
        let nat = q.e_step_weights();
        Noise { spec: q.spec, log_weights: q.log_weights, means: q.means, stds, nat }
    }

    /// log q(x) of one image x [D] on the host, in f64 from the same weights as the GPU.
    pub fn log_q(&self, x: &[f32]) -> f64 {
        let (spec, d) = (self.spec, self.spec.pixels);
        let f = spec.features();
        let joints: Vec<f64> = (0..spec.components)
            .map(|k| {
                let w = &self.nat[k * f..(k + 1) * f];
                let mut sum = self.nat[spec.bias_at() + k] as f64;
                for j in 0..d {
                    let v = x[j] as f64;
                    sum += w[j] as f64 * v;
                    if spec.family == Family::Gaussian {
                        sum += w[d + j] as f64 * v * v;
                    }
                }
                sum
            })
            .collect();
        log_sum_exp(&joints)
    }
}

pub fn log_sum_exp(v: &[f64]) -> f64 {
    let top = v.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    if !top.is_finite() {
        return top;
    }
    top + v.iter().map(|&x| (x - top).exp()).sum::<f64>().ln()
}

/// An importance-sampling estimate of log E_q[w], w = exp(log_ratio), from M draws of q.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogEstimate {
    pub value: f64,
    /// The delta method's standard error of the log: sd(w) / (sqrt(M) mean(w)).
    pub stderr: f64,
    /// The effective sample size (sum w)^2 / sum w^2, in [1, M].
    pub ess: f64,
}

/// log mean_j exp(log_ratios_j), max-subtracted, with its standard error and ESS.
pub fn log_mean_exp(log_ratios: &[f64]) -> LogEstimate {
    let m = log_ratios.len() as f64;
    let top = log_ratios.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let w: Vec<f64> = log_ratios.iter().map(|&l| (l - top).exp()).collect();
    let (sum, sum_sq) = (w.iter().sum::<f64>(), w.iter().map(|v| v * v).sum::<f64>());
    let mean = sum / m;
    let var = if m > 1.0 { (sum_sq - m * mean * mean).max(0.0) / (m - 1.0) } else { 0.0 };
    LogEstimate { value: top + mean.ln(), stderr: var.sqrt() / (m.sqrt() * mean), ess: sum * sum / sum_sq }
}

/// How a run trains: rows per step, noise draws per row, Adam, the seed.
pub struct NceSettings {
    pub batch: usize,
    /// k, noise draws per data row.
    pub noise: usize,
    pub adam: crate::config::AdamConfig,
    pub seed: u32,
}
