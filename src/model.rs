//! The VAE's architecture and where each parameter lives in the one flat parameter buffer.
//!
//! Encoder: x [B, input] -> relu(hidden[0]) -> ... -> relu(hidden[L-1]) -> [mu | logvar] [B, 2 * latent]
//! Decoder: z [B, latent] -> relu(hidden[L-1]) -> ... -> relu(hidden[0]) -> logits [B, input]
//! The default 784-400-20-400-784 is pytorch/examples' VAE (its fc21 and fc22 are our one
//! [40, 400] layer's first and second 20 rows). A Gaussian decoder's last layer is twice as wide:
//! each row is [means | log-variances].
use rand::{Rng, SeedableRng};

use crate::data::ImageShape;
use crate::gpu::align_floats;
use crate::network::{Layer, LayerKind};
use crate::shaders::Entry;

#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    /// The data's images; the encoder's input and the decoder's output are their pixels() values.
    pub image: ImageShape,
    pub hidden: Vec<usize>,
    pub latent: usize,
    pub decoder: Decoder,
    /// Classes conditioned on (a CVAE: q(z|x, y), p(x|z, y), p(z|y)); 0 for an unconditional VAE.
    pub classes: usize,
    /// Relaxed categorical latents (groups, categories) instead of a Gaussian; then
    /// latent = groups x categories and the encoder outputs that many logits.
    pub categorical: Option<(usize, usize)>,
}

impl Architecture {
    /// Values per image: the width of x.
    pub fn input(&self) -> usize {
        self.image.pixels()
    }

    /// Width of the encoder's output: [mu | logvar] (2 latent), or the categorical logits (latent).
    pub fn encoder_outputs(&self) -> usize {
        if self.categorical.is_some() {
            self.latent
        } else {
            2 * self.latent
        }
    }

    /// Columns of the one-hot class block appended to the encoder's and the decoder's input: the
    /// class count rounded up to a multiple of 4 (the extra columns stay 0).
    pub fn class_block(&self) -> usize {
        self.classes.div_ceil(4) * 4
    }
}

/// p(x|z): what the decoder's last layer outputs per pixel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decoder {
    /// Bernoulli(sigmoid(logit)): one logit per pixel (pytorch/examples' binary cross-entropy).
    #[default]
    Bernoulli,
    /// N(mean, exp(logvar)), diagonal: a mean and a log-variance per pixel, both functions of z
    /// (seed 001's N(mu(z), Sigma(z))); the log-variance is clamped to [-6, 4] for stability.
    Gaussian,
}

impl Decoder {
    /// Entry points of -log p(x|z) and its gradient (shaders/loss.wgsl).
    pub fn loss_kernels(self) -> (Entry, Entry) {
        match self {
            Decoder::Bernoulli => (Entry::BernoulliRecForward, Entry::BernoulliRecBackward),
            Decoder::Gaussian => (Entry::GaussianRecForward, Entry::GaussianRecBackward),
        }
    }

    /// Entry point of the importance weights log p(x|z) + log p(z) - log q(z|x) (shaders/importance.wgsl).
    pub fn log_weight_kernel(self) -> Entry {
        match self {
            Decoder::Bernoulli => Entry::IwLogWeight,
            Decoder::Gaussian => Entry::IwLogWeightGaussian,
        }
    }

    /// Decoder outputs per pixel.
    pub fn outputs_per_pixel(self) -> usize {
        match self {
            Decoder::Bernoulli => 1,
            Decoder::Gaussian => 2,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Model {
    pub arch: Architecture,
    pub encoder: Vec<Layer>,
    pub decoder: Vec<Layer>,
    /// The learned prior p(z|y) of a conditional model: [mu | logvar] = W onehot(y) + b, [2 latent, class block].
    pub prior: Option<Layer>,
    /// Length of the flat parameter buffer, padding included.
    pub param_count: usize,
}

impl Model {
    pub fn new(arch: Architecture) -> Model {
        let mut at = 0;
        let mut layer = |n_in: usize, n_out: usize, relu: bool, relu_input: bool| {
            let weight_at = at;
            at += align_floats(n_in * n_out);
            let bias_at = at;
            at += align_floats(n_out);
            Layer { kind: LayerKind::Linear, n_in, n_out, relu, relu_input, weight_at, bias_at }
        };
        // Widths along each path; every layer but the last of a path has a ReLU.
        let mut encoder_widths = vec![arch.input() + arch.class_block()];
        encoder_widths.extend(&arch.hidden);
        encoder_widths.push(arch.encoder_outputs());
        let mut decoder_widths = vec![arch.latent + arch.class_block()];
        decoder_widths.extend(arch.hidden.iter().rev());
        decoder_widths.push(arch.input() * arch.decoder.outputs_per_pixel());
        let mut path = |widths: &[usize]| -> Vec<Layer> {
            let last = widths.len() - 2;
            widths.windows(2).enumerate().map(|(i, w)| layer(w[0], w[1], i < last, i > 0)).collect()
        };
        let encoder = path(&encoder_widths);
        let decoder = path(&decoder_widths);
        let prior = (arch.classes > 0).then(|| layer(arch.class_block(), 2 * arch.latent, false, false));
        let param_count = at;
        Model { arch, encoder, decoder, prior, param_count }
    }

    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.encoder.iter().chain(self.decoder.iter()).chain(self.prior.iter())
    }

    /// PyTorch's nn.Linear initialisation: W and b uniform in +-1/sqrt(n_in) (kaiming_uniform with
    /// a = sqrt(5) reduces to that bound for W). Padding stays 0, and so does a conditional model's
    /// prior layer: p(z|y) starts as N(0, I) for every class.
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut params = vec![0.0f32; self.param_count];
        for layer in self.encoder.iter().chain(&self.decoder) {
            let bound = 1.0 / (layer.fan_in() as f32).sqrt();
            for w in &mut params[layer.weight_at..layer.weight_at + layer.weight_len()] {
                *w = rng.random_range(-bound..bound);
            }
            for b in &mut params[layer.bias_at..layer.bias_at + layer.bias_len()] {
                *b = rng.random_range(-bound..bound);
            }
        }
        params
    }

    /// Multiply-adds of one training step per example: forward and the three backward products,
    /// without the first layer's input gradient, which is never computed.
    pub fn flops_per_example(&self) -> f64 {
        let macs: usize = self.layers().map(|l| l.macs_per_row()).sum();
        let first = self.encoder[0].macs_per_row();
        2.0 * (3 * macs - first) as f64
    }
}
