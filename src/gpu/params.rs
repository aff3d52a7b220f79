//! Host mirrors of the WGSL structs (same field order, 16-byte multiples). One vocabulary, here and
//! in the shaders: `batch` is the user's batch B (inputs a step takes), `rows` what a kernel runs
//! over (B x samples for the latent and decoder side, patch rows for a convolution's products).

pub const NO_BAD_STEP: u32 = u32::MAX;

/// Mirror of `Counters` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Counters {
    pub step: u32,
    pub cursor: u32,
    pub bad_step: u32,
    pub pad: u32,
}

impl Counters {
    pub fn new() -> Counters {
        Counters { step: 0, cursor: 0, bad_step: NO_BAD_STEP, pad: 0 }
    }
}

/// Mirror of `LossTotals` in shaders/loss.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LossTotals {
    pub rec_sum: f32,
    pub kl_sum: f32,
    pub examples: f32,
    pub pad: f32,
}

impl LossTotals {
    /// (loss, reconstruction, KL) per example: the negative ELBO's mean and its two terms.
    pub fn means(&self) -> (f32, f32, f32) {
        let n = self.examples.max(1.0);
        ((self.rec_sum + self.kl_sum) / n, self.rec_sum / n, self.kl_sum / n)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Dims {
    pub rows: u32,
    pub n_in: u32,
    pub n_out: u32,
    pub relu: u32,
}

/// A convolution's shapes (shaders/conv.wgsl): NCHW input and output, a square kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvDims {
    pub rows: u32,
    pub c_in: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub c_out: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub kernel: u32,
    pub stride: u32,
    pub padding: u32,
    pub relu: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LatentParams {
    pub rows: u32,
    pub latent: u32,
    pub seed: u32,
    pub stream: u32,
    pub beta: f32,
    pub warmup_steps: u32,
    pub free_bits: f32,
    pub sample_scale: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LossParams {
    pub rows: u32,
    pub pixels: u32,
    pub pass_rows: u32,
    pub training: u32,
    pub repeat: u32,
    pub fixed_batch: u32,
    pub pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SampleParams {
    pub rows: u32,
    pub samples: u32,
    pub latent: u32,
    pub baseline: u32,
    pub beta: f32,
    pub warmup_steps: u32,
    pub decay: f32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TableParams {
    /// The user's batch: the inputs whose rows of the table a step updates.
    pub batch: u32,
    pub width: u32,
    pub pass_rows: u32,
    pub updates_per_step: u32,
    pub update_index: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CategoricalParams {
    pub rows: u32,
    pub groups: u32,
    pub categories: u32,
    pub seed: u32,
    pub stream: u32,
    pub anneal_steps: u32,
    pub tau_start: f32,
    pub tau_end: f32,
    pub beta: f32,
    pub warmup_steps: u32,
    pub sample_scale: f32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ColumnParams {
    pub rows: u32,
    pub src_width: u32,
    pub dst_width: u32,
    pub count: u32,
    pub src_offset: u32,
    pub dst_offset: u32,
    pub repeat: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RowParams {
    pub inputs: u32,
    pub samples: u32,
    pub width: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdamParams {
    pub count: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GatherParams {
    /// The user's batch: the inputs a step gathers.
    pub batch: u32,
    pub words: u32,
    pub pass_rows: u32,
    pub binarize: u32,
    pub seed: u32,
    pub stream: u32,
    pub first_image: u32,
    pub shard_images: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct IwParams {
    pub images: u32,
    pub samples: u32,
    pub latent: u32,
    pub pixels: u32,
    pub first_image: u32,
    pub first_sample: u32,
    pub total_samples: u32,
    pub seed: u32,
    pub result_offset: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ToyParams {
    pub draws: u32,
    pub a: f32,
    pub b: f32,
    pub lr: f32,
    pub seed: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MixtureParams {
    pub rows: u32,
    pub pixels: u32,
    pub components: u32,
    pub family: u32,
    pub first_row: u32,
    pub bias_at: u32,
    pub total_rows: u32,
    pub pseudo_count: f32,
    pub var_floor: f32,
    pub live: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct NceParams {
    pub data_rows: u32,
    pub noise: u32,
    pub noise_rows: u32,
    pub first_noise: u32,
    pub pixels: u32,
    pub components: u32,
    pub family: u32,
    pub seed: u32,
    pub stream: u32,
    pub draw: u32,
    pub pass_rows: u32,
    pub training: u32,
    pub log_k: f32,
    /// 1: the model's log density is log q(x) + o(x) (nce::Base::Noise), 0: o(x).
    pub base: u32,
    pub pad: [u32; 2],
}

/// Mirror of `NceTotals` in shaders/nce.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct NceTotals {
    pub loss_sum: f32,
    pub correct_sum: f32,
    pub examples: f32,
    pub pad: f32,
}

/// Philox streams: independent random sequences for each use.
pub const STREAM_TRAIN_EPS: u32 = 0;
pub const STREAM_EVAL_EPS: u32 = 1;
pub const STREAM_BINARIZE: u32 = 2;
/// Fixed in shaders/importance.wgsl, which keys its counters differently (image, sample, j / 4).
pub const STREAM_IMPORTANCE: u32 = 3;
/// The toy example's draws (shaders/toy.wgsl).
pub const STREAM_TOY: u32 = 4;
const _: () = assert!(STREAM_IMPORTANCE == crate::shaders::importance::STREAM_IMPORTANCE);
const _: () = assert!(STREAM_TOY == crate::shaders::toy::STREAM_TOY);
/// NCE's noise: the training steps', the validation passes' and the log Z estimate's.
pub const STREAM_NCE_TRAIN: u32 = 5;
pub const STREAM_NCE_EVAL: u32 = 6;
pub const STREAM_NCE_LOG_Z: u32 = 7;
/// Per-datapoint inference: inner step i draws from stream STREAM_INNER_EPS + i.
pub const STREAM_INNER_EPS: u32 = 16;

/// Checks at compile time that a host mirror has its WGSL struct's size and, for every field the
/// WGSL names (padding aside), the same offset; the list must name them all.
macro_rules! mirrors {
    ($host:ty, $layout:expr, [$($field:ident),+ $(,)?]) => {
        const _: () = {
            let layout = $layout;
            assert!(std::mem::size_of::<$host>() == layout.size, "host mirror and WGSL struct differ in size");
            $(assert!(
                std::mem::offset_of!($host, $field) == layout.offset(stringify!($field)),
                "host mirror and WGSL struct differ in a field's offset"
            );)+
            assert!([$(stringify!($field)),+].len() == layout.named_fields(), "a WGSL field is not mirrored");
        };
    };
}
/// For launchers that keep their kernels' uniforms beside them (network/group_norm.rs).
pub(crate) use mirrors;

use crate::shaders::layout as wgsl;
mirrors!(Counters, wgsl::COUNTERS, [step, cursor, bad_step]);
mirrors!(LossTotals, wgsl::LOSS_TOTALS, [rec_sum, kl_sum, examples]);
mirrors!(Dims, wgsl::DIMS, [rows, n_in, n_out, relu]);
mirrors!(ConvDims, wgsl::CONV_DIMS, [rows, c_in, h_in, w_in, c_out, h_out, w_out, kernel, stride, padding, relu]);
mirrors!(LatentParams, wgsl::LATENT_PARAMS, [rows, latent, seed, stream, beta, warmup_steps, free_bits, sample_scale]);
mirrors!(LossParams, wgsl::LOSS_PARAMS, [rows, pixels, pass_rows, training, repeat, fixed_batch]);
mirrors!(SampleParams, wgsl::SAMPLE_PARAMS, [rows, samples, latent, baseline, beta, warmup_steps, decay]);
mirrors!(
    TableParams,
    wgsl::TABLE_PARAMS,
    [batch, width, pass_rows, updates_per_step, update_index, lr, beta1, beta2, eps]
);
mirrors!(
    CategoricalParams,
    wgsl::CATEGORICAL_PARAMS,
    [rows, groups, categories, seed, stream, anneal_steps, tau_start, tau_end, beta, warmup_steps, sample_scale]
);
mirrors!(ColumnParams, wgsl::COLUMN_PARAMS, [rows, src_width, dst_width, count, src_offset, dst_offset, repeat]);
mirrors!(RowParams, wgsl::ROW_PARAMS, [inputs, samples, width]);
mirrors!(AdamParams, wgsl::ADAM_PARAMS, [count, lr, beta1, beta2, eps]);
mirrors!(
    GatherParams,
    wgsl::GATHER_PARAMS,
    [batch, words, pass_rows, binarize, seed, stream, first_image, shard_images]
);
mirrors!(
    IwParams,
    wgsl::IW_PARAMS,
    [images, samples, latent, pixels, first_image, first_sample, total_samples, seed, result_offset]
);
mirrors!(ToyParams, wgsl::TOY_PARAMS, [draws, a, b, lr, seed]);
mirrors!(
    MixtureParams,
    wgsl::MIXTURE_PARAMS,
    [rows, pixels, components, family, first_row, bias_at, total_rows, pseudo_count, var_floor, live]
);
mirrors!(
    NceParams,
    wgsl::NCE_PARAMS,
    [
        data_rows,
        noise,
        noise_rows,
        first_noise,
        pixels,
        components,
        family,
        seed,
        stream,
        draw,
        pass_rows,
        training,
        log_k,
        base
    ]
);
mirrors!(NceTotals, wgsl::NCE_TOTALS, [loss_sum, correct_sum, examples]);

/// Mirror of `TiledDims` in shaders/linear_tiled.wgsl: a linear layer's widths and how the tiled
/// product's reduction is cut into slices.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TiledDims {
    pub rows: u32,
    pub n_in: u32,
    pub n_out: u32,
    pub relu: u32,
    pub slice_len: u32,
    pub slices: u32,
    pub bias: u32,
    pub pad: u32,
}
mirrors!(TiledDims, wgsl::TILED_DIMS, [rows, n_in, n_out, relu, slice_len, slices, bias]);
