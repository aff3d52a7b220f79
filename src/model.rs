//! The VAE's architecture and where each parameter lives in the one flat parameter buffer.
//!
//! Encoder: x [B, input] -> relu(hidden[0]) -> ... -> relu(hidden[L-1]) -> [mu | logvar] [B, 2 * latent]
//! Decoder: z [B, latent] -> relu(hidden[L-1]) -> ... -> relu(hidden[0]) -> logits [B, input]
//! The default 784-400-20-400-784 is pytorch/examples' VAE (its fc21 and fc22 are our one
//! [40, 400] layer's first and second 20 rows). A Gaussian decoder's last layer is twice as wide:
//! each row is [means | log-variances].
use rand::SeedableRng;

use crate::data::ImageShape;
use crate::gpu::align_floats;
use crate::network::conv_kinds::{Conv2d, ConvTranspose2d};
use crate::network::group_norm::GroupNorm;
use crate::network::{ConvShape, Layer, LayerKind};

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
    /// A convolutional encoder and decoder with these channel widths (DCGAN-style, see
    /// `conv_paths`) instead of the MLP of `hidden`.
    pub conv: Option<Vec<usize>>,
    /// The conv VAE's nn.GroupNorm with this many groups after every hidden convolution.
    pub group_norm: Option<usize>,
}

impl Architecture {
    /// An MLP VAE over `image` with these hidden widths and a Gaussian latent of `latent`
    /// dimensions, a Bernoulli decoder, unconditional: what the other fields vary from.
    pub fn mlp(image: ImageShape, hidden: Vec<usize>, latent: usize) -> Architecture {
        let (decoder, classes, categorical, conv, group_norm) = (Decoder::Bernoulli, 0, None, None, None);
        Architecture { image, hidden, latent, decoder, classes, categorical, conv, group_norm }
    }

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

/// Normalisation after the conv VAE's hidden convolutions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    #[default]
    None,
    /// nn.GroupNorm(--norm-groups, channels), affine.
    Group,
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
    /// Each layer's name as a PyTorch module would have it (its tensors are `name.weight` and
    /// `name.bias`), in `layers()` order.
    pub names: Vec<String>,
    /// Length of the flat parameter buffer, padding included.
    pub param_count: usize,
}

/// Places a layer (PyTorch module name, kind, n_in, n_out, relu, relu_input) in the flat parameter
/// buffer; layers are placed in `Model::layers` order.
type Place<'a> = dyn FnMut(String, LayerKind, usize, usize, bool, bool) -> Layer + 'a;

/// The MLP: widths along each path; every layer but the last of a path has a ReLU. Named as
/// pytorch/examples' VAE (fc1, fc2, fc3, fc4) with one hidden layer, else as two nn.Sequential
/// stacks of linear layers (encoder.{i}, decoder.{i}).
fn mlp_paths(arch: &Architecture, place: &mut Place) -> (Vec<Layer>, Vec<Layer>) {
    let mut encoder_widths = vec![arch.input() + arch.class_block()];
    encoder_widths.extend(&arch.hidden);
    encoder_widths.push(arch.encoder_outputs());
    let mut decoder_widths = vec![arch.latent + arch.class_block()];
    decoder_widths.extend(arch.hidden.iter().rev());
    decoder_widths.push(arch.input() * arch.decoder.outputs_per_pixel());
    let one_hidden = arch.hidden.len() == 1;
    let encoder_name = |i: usize| if one_hidden { ["fc1", "fc2"][i].to_string() } else { format!("encoder.{i}") };
    let decoder_name = |i: usize| if one_hidden { ["fc3", "fc4"][i].to_string() } else { format!("decoder.{i}") };
    let mut path = |widths: &[usize], name: &dyn Fn(usize) -> String| -> Vec<Layer> {
        let last = widths.len() - 2;
        let layer = |(i, w): (usize, &[usize])| place(name(i), LayerKind::Linear, w[0], w[1], i < last, i > 0);
        widths.windows(2).enumerate().map(layer).collect()
    };
    (path(&encoder_widths, &encoder_name), path(&decoder_widths, &decoder_name))
}

/// The conv VAE (DCGAN-style): per channel width a Conv2d(4, stride 2, padding 1) + ReLU halving
/// each side (enc.{i}), then one linear layer to [mu | logvar] (fc21 and fc22, or fc2 for
/// categorical logits; a conditional model's takes [map | onehot(y)]); the decoder a linear layer
/// with a ReLU (fc3, of [z | onehot(y)]) to the last map, then per width in reverse a
/// ConvTranspose2d(4, 2, 1) doubling each side (dec.{i}), ReLU between, the last giving the
/// image's channels (twice: means and log-variances for a Gaussian decoder, so each row is [means
/// | log-variances] as for the MLP). With `group_norm`, nn.GroupNorm (enc_norm.{i}, dec_norm.{i})
/// between each hidden convolution and its ReLU. The sides must be divisible by 2^depth (config
/// checks it).
fn conv_paths(arch: &Architecture, channels: &[usize], place: &mut Place) -> (Vec<Layer>, Vec<Layer>) {
    let image = arch.image;
    let mut maps = vec![(image.channels, image.height, image.width)];
    for &c in channels {
        let (_, h, w) = maps[maps.len() - 1];
        maps.push((c, h / 2, w / 2));
    }
    let volume = |(c, h, w): (usize, usize, usize)| c * h * w;
    let shape = |input, output| ConvShape { input, output, kernel: 4, stride: 2, padding: 1 };
    let mut encoder = Vec::new();
    for (i, m) in maps.windows(2).enumerate() {
        let kind = LayerKind::Conv2d(Conv2d(shape(m[0], m[1])));
        encoder.push(place(format!("enc.{i}"), kind, volume(m[0]), volume(m[1]), arch.group_norm.is_none(), i > 0));
        encoder.extend(norm(arch, place, format!("enc_norm.{i}"), m[1]));
    }
    // A conditional model's class block joins the flattened map (fc21/fc22's input) and z.
    let (deepest, cb) = (volume(maps[maps.len() - 1]), arch.class_block());
    encoder.push(place("fc2".into(), LayerKind::Linear, deepest + cb, arch.encoder_outputs(), false, true));
    let mut decoder = vec![place("fc3".into(), LayerKind::Linear, arch.latent + cb, deepest, true, false)];
    for d in (1..maps.len()).rev() {
        let to = if d == 1 {
            (image.channels * arch.decoder.outputs_per_pixel(), image.height, image.width)
        } else {
            maps[d - 1]
        };
        let (kind, j) = (LayerKind::ConvTranspose2d(ConvTranspose2d(shape(maps[d], to))), maps.len() - 1 - d);
        let hidden = d > 1;
        decoder.push(place(
            format!("dec.{j}"),
            kind,
            volume(maps[d]),
            volume(to),
            hidden && arch.group_norm.is_none(),
            true,
        ));
        if hidden {
            decoder.extend(norm(arch, place, format!("dec_norm.{j}"), to));
        }
    }
    (encoder, decoder)
}

/// With `arch.group_norm`, nn.GroupNorm after a hidden convolution to `map` (c, h, w), before the
/// ReLU, which moves from the convolution to the norm.
fn norm(arch: &Architecture, place: &mut Place, name: String, (c, h, w): (usize, usize, usize)) -> Option<Layer> {
    let kind = LayerKind::GroupNorm(GroupNorm { channels: c, groups: arch.group_norm?, spatial: h * w });
    Some(place(name, kind, c * h * w, c * h * w, true, false))
}

impl Model {
    pub fn new(arch: Architecture) -> Model {
        let (mut at, mut names) = (0, Vec::new());
        let mut place = |name, kind, n_in, n_out, relu, relu_input| {
            let mut layer = Layer { kind, n_in, n_out, relu, relu_input, weight_at: at, bias_at: 0 };
            at += align_floats(layer.weight_len());
            layer.bias_at = at;
            at += align_floats(layer.bias_len());
            names.push(name);
            layer
        };
        let (encoder, decoder) = match &arch.conv {
            None => mlp_paths(&arch, &mut place),
            Some(channels) => conv_paths(&arch, channels, &mut place),
        };
        let prior = (arch.classes > 0)
            .then(|| place("prior".into(), LayerKind::Linear, arch.class_block(), 2 * arch.latent, false, false));
        let param_count = at;
        Model { arch, encoder, decoder, prior, names, param_count }
    }

    /// The encoder layer whose input a conditional model joins with the class block: the first
    /// (the MLP's [x | onehot]), or the conv VAE's fc21/fc22 after the convolutions ([map | onehot]).
    pub fn encoder_class_layer(&self) -> usize {
        if self.arch.conv.is_some() {
            self.encoder.len() - 1
        } else {
            0
        }
    }

    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.encoder.iter().chain(self.decoder.iter()).chain(self.prior.iter())
    }

    /// PyTorch's initialisation of each layer (network::Kind::init: nn.Linear's and nn.Conv2d's
    /// uniform in +-1/sqrt(fan_in)). Padding stays 0, and so does a conditional model's prior
    /// layer: p(z|y) starts as N(0, I) for every class.
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut params = vec![0.0f32; self.param_count];
        for layer in self.encoder.iter().chain(&self.decoder) {
            let [weight, bias] = layer.kind.computation().init(layer, &mut rng);
            params[layer.weight_at..layer.weight_at + weight.len()].copy_from_slice(&weight);
            params[layer.bias_at..layer.bias_at + bias.len()].copy_from_slice(&bias);
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
