//! A network as an ordered list of layers, each reading the previous one's output, with the
//! launches of its forward and backward passes at any row count. The trainer, the refiner and the
//! importance sampler run the same layers on their own buffers; reference/network.rs follows the
//! same list on the CPU.
pub mod conv;
pub mod conv_kinds;
pub mod group_norm;
pub mod linear;

use crate::gpu::{self, Launch, Launcher};
use wgpu::Buffer;

/// What a layer computes. Each kind has its shader, its launcher and CPU mirror (network/<kind>.rs,
/// implementing `Kind`), its reference (reference/<module>.rs) and its tests; this enum and
/// `LayerKind::computation` are the one place kinds are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// y = act(x W^T + b), W [n_out, n_in] row-major (nn.Linear's layout).
    Linear,
    /// nn.Conv2d on NCHW rows, W [c_out, c_in, k, k].
    Conv2d(conv_kinds::Conv2d),
    /// nn.ConvTranspose2d on NCHW rows, W [c_in, c_out, k, k].
    ConvTranspose2d(conv_kinds::ConvTranspose2d),
    /// nn.GroupNorm (affine) on NCHW rows, weight and bias [channels].
    GroupNorm(group_norm::GroupNorm),
}

impl LayerKind {
    /// The kind's computation: its shapes, launches and CPU mirror. The one list of kinds.
    pub fn computation(&self) -> &dyn Kind {
        match self {
            LayerKind::Linear => &linear::Linear,
            LayerKind::Conv2d(k) => k,
            LayerKind::ConvTranspose2d(k) => k,
            LayerKind::GroupNorm(k) => k,
        }
    }
}

/// A convolution's input and output maps (channels, height, width) and its square kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub input: (usize, usize, usize),
    pub output: (usize, usize, usize),
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// A layer kind on the CPU, for a `Layer` of that kind: what its kernels compute, from their
/// reference functions. Each kind implements it in src/reference/ beside those functions, so
/// network/ states the contract without importing the reference.
pub trait Mirror {
    /// output [rows, n_out] of input [rows, n_in].
    fn reference_forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32>;

    /// d_input [rows, n_in] from d_output [rows, n_out], masked where `input` came out of a ReLU.
    fn reference_backward_input(
        &self,
        layer: &Layer,
        params: &[f32],
        input: &[f32],
        d_output: &[f32],
        rows: usize,
    ) -> Vec<f32>;

    /// The weight's and the bias's gradients.
    fn reference_backward_params(&self, layer: &Layer, input: &[f32], d_output: &[f32], rows: usize) -> [Vec<f32>; 2];
}

/// A layer kind's computation on the GPU: its tensors, initialisation and launches, for a `Layer`
/// of that kind, and (Mirror) the same on the CPU.
pub trait Kind: Mirror {
    /// The weight's and the bias's shapes, as PyTorch stores them.
    fn shapes(&self, layer: &Layer) -> [Vec<usize>; 2];

    /// Multiply-adds of the forward pass per row (each backward product costs about as many).
    fn macs_per_row(&self, layer: &Layer) -> usize;

    /// PyTorch's initial weight and bias. By default nn.Linear's and nn.Conv2d's: uniform in
    /// +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5) reduces to that bound), weight first.
    fn init(&self, layer: &Layer, rng: &mut rand::rngs::StdRng) -> [Vec<f32>; 2] {
        use rand::Rng;
        let bound = 1.0 / (layer.fan_in() as f32).sqrt();
        let mut draw = |n: usize| (0..n).map(|_| rng.random_range(-bound..bound)).collect::<Vec<f32>>();
        let weight = draw(layer.weight_len());
        [weight, draw(layer.bias_len())]
    }

    /// output [rows, n_out] = the layer of input [rows, n_in], its tensors read from `params`.
    fn forward(&self, l: Launcher, layer: &Layer, params: &Buffer, rows: usize, io: (&Buffer, &Buffer)) -> Vec<Launch>;

    /// The input's gradient into `d_input` (when given; masked where the input came out of a
    /// ReLU), then the parameters' gradients into `grads` (when given).
    fn backward(
        &self,
        l: Launcher,
        layer: &Layer,
        weights: (&Buffer, Option<&Buffer>),
        rows: usize,
        saved: (&Buffer, &Buffer),
        d_input: Option<&Buffer>,
    ) -> Vec<Launch>;
}

/// One layer of a path: `n_in` values per row in, `n_out` out, its parameters at fixed offsets of
/// the one flat parameter buffer (and of the gradient buffer, which has the same layout).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layer {
    pub kind: LayerKind,
    pub n_in: usize,
    pub n_out: usize,
    /// ReLU on the output.
    pub relu: bool,
    /// Whether the input came out of a ReLU (its gradient is masked where the input is 0).
    pub relu_input: bool,
    /// Offsets of the weight and the bias in the flat parameter buffer, in floats.
    pub weight_at: usize,
    pub bias_at: usize,
}

impl Layer {
    /// Bytes each of the layer's three products over `rows` moves at least: two of x [rows, n_in],
    /// W [n_out, n_in] and y [rows, n_out] read, the third written.
    pub fn product_traffic(&self, rows: usize) -> u64 {
        4 * (rows * self.n_in + self.n_in * self.n_out + rows * self.n_out) as u64
    }

    /// The weight's shape as PyTorch stores it.
    pub fn weight_shape(&self) -> Vec<usize> {
        let [weight, _] = self.kind.computation().shapes(self);
        weight
    }

    pub fn weight_len(&self) -> usize {
        self.weight_shape().iter().product()
    }

    pub fn bias_len(&self) -> usize {
        let [_, bias] = self.kind.computation().shapes(self);
        bias.iter().product()
    }

    /// PyTorch's fan-in, whose 1 / sqrt is its initialisation bound: the weight's second dimension
    /// times the kernel's area (so, as PyTorch computes it, c_out k^2 for a transposed convolution).
    pub fn fan_in(&self) -> usize {
        self.weight_shape()[1..].iter().product()
    }

    /// The layer's tensors as a PyTorch module named `name` holds them: `name.weight`, `name.bias`.
    pub fn tensors(&self, name: &str) -> [TensorSlot; 2] {
        let [weight, bias] = self.kind.computation().shapes(self);
        [
            TensorSlot { name: format!("{name}.weight"), at: self.weight_at, shape: weight },
            TensorSlot { name: format!("{name}.bias"), at: self.bias_at, shape: bias },
        ]
    }

    /// The layer's weight and bias in the flat parameter vector.
    pub fn tensors_in<'a>(&self, params: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        (
            &params[self.weight_at..self.weight_at + self.weight_len()],
            &params[self.bias_at..self.bias_at + self.bias_len()],
        )
    }

    /// Multiply-adds of the forward pass per row (each backward product costs as many), padding
    /// taps included.
    pub fn macs_per_row(&self) -> usize {
        self.kind.computation().macs_per_row(self)
    }

    /// output [rows, n_out] = the layer of input [rows, n_in], weights read from `params`.
    pub fn forward(&self, l: Launcher, params: &Buffer, rows: usize, input: &Buffer, output: &Buffer) -> Vec<Launch> {
        self.kind.computation().forward(l, self, params, rows, (input, output))
    }

    /// Its backward pass: the input's gradient into `d_input` (when given; masked where the input
    /// came out of a ReLU), then the parameters' gradients into `grads` (when given).
    pub fn backward(
        &self,
        l: Launcher,
        weights: (&Buffer, Option<&Buffer>),
        rows: usize,
        saved: (&Buffer, &Buffer),
        d_input: Option<&Buffer>,
    ) -> Vec<Launch> {
        self.kind.computation().backward(l, self, weights, rows, saved, d_input)
    }
}

/// A named tensor's place in the flat parameter buffer: `len` floats from `at`, in PyTorch's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSlot {
    pub name: String,
    pub at: usize,
    pub shape: Vec<usize>,
}

impl TensorSlot {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One zeroed [rows, n_out] buffer per layer.
pub fn activations(gpu: &gpu::Gpu, label: &str, layers: &[Layer], rows: usize) -> Vec<wgpu::Buffer> {
    layers
        .iter()
        .enumerate()
        .map(|(i, layer)| gpu::zeroed::<f32>(gpu, &format!("{label}{i}"), rows * layer.n_out))
        .collect()
}

/// The layers in order: input -> outputs[0] -> ... -> outputs[last].
pub fn forward_path(
    l: Launcher,
    params: &wgpu::Buffer,
    layers: &[Layer],
    rows: usize,
    input: &wgpu::Buffer,
    outputs: &[wgpu::Buffer],
) -> Vec<Launch> {
    layers
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| {
            layer.forward(l, params, rows, if i == 0 { input } else { &outputs[i - 1] }, &outputs[i])
        })
        .collect()
}

/// Backward through the layers, last first: every layer's parameter gradients into `grads`, and
/// the gradient of the path's input into `d_input` when given. `outputs` and `d_outputs` are the
/// forward pass's activations and their gradients (d_outputs[last] holds the loss's gradient).
pub fn backward_path(
    l: Launcher,
    weights: (&wgpu::Buffer, &wgpu::Buffer),
    layers: &[Layer],
    rows: usize,
    (input, outputs, d_outputs): (&wgpu::Buffer, &[wgpu::Buffer], &[wgpu::Buffer]),
    d_input: Option<&wgpu::Buffer>,
) -> Vec<Launch> {
    let mut launches = Vec::new();
    for (i, layer) in layers.iter().enumerate().rev() {
        let layer_input = if i == 0 { input } else { &outputs[i - 1] };
        let layer_d_input = if i == 0 { d_input } else { Some(&d_outputs[i - 1]) };
        launches.extend(layer.backward(
            l,
            (weights.0, Some(weights.1)),
            rows,
            (layer_input, &d_outputs[i]),
            layer_d_input,
        ));
    }
    launches
}

/// Backward through frozen layers: the input gradients alone, down to `d_input`.
pub fn backward_inputs(
    l: Launcher,
    params: &wgpu::Buffer,
    layers: &[Layer],
    rows: usize,
    (input, outputs, d_outputs): (&wgpu::Buffer, &[wgpu::Buffer], &[wgpu::Buffer]),
    d_input: &wgpu::Buffer,
) -> Vec<Launch> {
    let mut launches = Vec::new();
    for (i, layer) in layers.iter().enumerate().rev() {
        let (layer_input, layer_d_input) = if i == 0 { (input, d_input) } else { (&outputs[i - 1], &d_outputs[i - 1]) };
        launches.extend(layer.backward(l, (params, None), rows, (layer_input, &d_outputs[i]), Some(layer_d_input)));
    }
    launches
}
