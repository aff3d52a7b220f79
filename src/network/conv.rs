//! The convolution layers' launches: Conv2d and ConvTranspose2d over `rows` NCHW images, by one of
//! two kernel families the kernel plan chooses (plan::ConvVariant): the direct kernels (shaders/conv.wgsl, one invocation
//! per value written), or patches copied into rows (shaders/im2col.wgsl) and the linear layer's
//! matrix products (network/linear/).
use super::linear::{self, BackwardInput, Forward, Weights};
use super::{ConvShape, Layer, LayerKind};
use crate::gpu::kernels::{bind, bind_range, Bind};
use crate::gpu::params::ConvDims;
use crate::gpu::{self, Launch, Launcher};
pub use crate::plan::ConvVariant;
use crate::shaders::{conv, im2col, Entry};
use conv::{AUX, DIMS, DST, SRC, WEIGHT};

/// The kernels' ConvDims for `rows` images of `c` (relu: on the output forward, the input's mask
/// backward).
pub fn conv_dims(c: &ConvShape, rows: usize, relu: bool) -> ConvDims {
    ConvDims {
        rows: rows as u32,
        c_in: c.input.0 as u32,
        h_in: c.input.1 as u32,
        w_in: c.input.2 as u32,
        c_out: c.output.0 as u32,
        h_out: c.output.1 as u32,
        w_out: c.output.2 as u32,
        kernel: c.kernel as u32,
        stride: c.stride as u32,
        padding: c.padding as u32,
        relu: relu as u32,
        pad: 0,
    }
}

/// The Conv2d geometry of a layer (im2col.wgsl's "in" and "out"): a Conv2d's own, and for a
/// ConvTranspose2d the Conv2d it is the transpose of, from its output's shape to its input's.
pub fn conv_view(d: ConvDims, transposed: bool) -> ConvDims {
    if !transposed {
        return d;
    }
    ConvDims { c_in: d.c_out, h_in: d.h_out, w_in: d.w_out, c_out: d.c_in, h_out: d.h_in, w_out: d.w_in, ..d }
}

/// The patch-row products as a linear layer: `view`'s rows are (image, out position), its inputs
/// the patch (c_in k^2), its outputs the out channels; W [c_out, c_in k^2] is the layer's weight as
/// it lies (a Conv2d's [c_out, c_in, k, k], or a ConvTranspose2d's [c_in, c_out, k, k]).
fn patch_layer(layer: &Layer, view: &ConvDims, relu: bool) -> Layer {
    let k2 = (view.kernel * view.kernel) as usize;
    Layer {
        kind: LayerKind::Linear,
        n_in: view.c_in as usize * k2,
        n_out: view.c_out as usize,
        relu,
        relu_input: false,
        ..*layer
    }
}

/// Patch rows of `view`: images times out positions.
fn patch_rows(view: &ConvDims) -> usize {
    (view.rows * view.h_out * view.w_out) as usize
}

/// The bytes of the patch buffer the Gemm variant needs for `layer` (convolution `c`) over `rows`
/// images, and the patch rows (the matrix products' row count).
pub fn gemm_sizes(layer: &Layer, c: &ConvShape, transposed: bool, rows: usize) -> (u64, usize) {
    let view = conv_view(conv_dims(c, rows, false), transposed);
    let patch = patch_layer(layer, &view, false);
    ((patch_rows(&view) * patch.n_in * 4) as u64, patch_rows(&view))
}

/// shaders/im2col.wgsl's moves between NCHW maps and rows, over a Conv2d geometry (ConvDims):
/// "in" is the map the patches come from, "out" the map of their products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// patches [rows h_out w_out, c_in k^2] = the taps of in (zero outside); an invocation per kernel row.
    Im2col,
    /// in = the patches' taps summed back + aux (the bias per channel), ReLU where dims.relu.
    Col2imBias,
    /// in = the patches' taps summed back, 0 where aux (the layer's input) is 0 and dims.relu.
    Col2imMasked,
    /// rows [rows h_out w_out, c_out] = out.
    NchwToRows,
    /// out = rows, 0 where aux is 0 and dims.relu.
    RowsToNchw,
}

impl Move {
    fn entry(self) -> Entry {
        match self {
            Move::Im2col => Entry::Im2col,
            Move::Col2imBias => Entry::Col2imBias,
            Move::Col2imMasked => Entry::Col2imMasked,
            Move::NchwToRows => Entry::NchwToRows,
            Move::RowsToNchw => Entry::RowsToNchw,
        }
    }

    /// The invocations over `d`: one per value written (Im2col: per kernel row of a patch).
    fn invocations(self, d: &ConvDims) -> usize {
        let in_map = (d.rows * d.c_in * d.h_in * d.w_in) as usize;
        let out_map = (d.rows * d.c_out * d.h_out * d.w_out) as usize;
        match self {
            Move::Im2col => out_map / d.c_out as usize * (d.c_in * d.kernel) as usize,
            Move::Col2imBias | Move::Col2imMasked => in_map,
            Move::NchwToRows | Move::RowsToNchw => out_map,
        }
    }
}

/// dst = `what` of src over the geometry `d` (its uniform `dims`), reading aux where the move does.
pub fn data_move(
    l: Launcher,
    what: Move,
    (d, dims): (&ConvDims, &wgpu::Buffer),
    (src, aux, dst): (&wgpu::Buffer, Option<Bind>, &wgpu::Buffer),
) -> Launch {
    let mut binds = vec![bind(im2col::DIMS, dims), bind(im2col::SRC, src), bind(im2col::DST, dst)];
    binds.extend(aux.map(|aux| Bind { binding: im2col::AUX, ..aux }));
    l.over(what.entry(), &binds, what.invocations(d))
}

fn scratch(l: Launcher, label: &str, floats: usize) -> wgpu::Buffer {
    gpu::zeroed::<f32>(l.gpu, label, floats)
}

/// A direct kernel's work: the layer's multiply-adds over `rows` images, padding taps included
/// (as the patch products count them).
fn flops(layer: &Layer, rows: usize) -> u64 {
    2 * (layer.macs_per_row() * rows) as u64
}

fn is_transposed(layer: &Layer) -> bool {
    matches!(layer.kind, LayerKind::ConvTranspose2d(_))
}

/// output [rows, c_out h_out w_out] = act(the layer of input [rows, c_in h_in w_in]).
pub fn forward(
    l: Launcher,
    layer: &Layer,
    c: &ConvShape,
    params: &wgpu::Buffer,
    rows: usize,
    (input, output): (&wgpu::Buffer, &wgpu::Buffer),
) -> Vec<Launch> {
    let d = conv_dims(c, rows, layer.relu);
    let u = l.uniform("conv dims", &d);
    let weight = bind_range(WEIGHT, params, layer.weight_at, layer.weight_len());
    let bias = bind_range(AUX, params, layer.bias_at, layer.bias_len());
    if l.plan().conv() == ConvVariant::Direct {
        let entry = if is_transposed(layer) { Entry::ConvTranspose2dForward } else { Entry::Conv2dForward };
        let binds = [bind(DIMS, &u), bind(SRC, input), weight, bias, bind(DST, output)];
        return vec![l.over(entry, &binds, rows * layer.n_out).with_flops(flops(layer, rows))];
    }
    let view = conv_view(conv_dims(c, rows, false), is_transposed(layer));
    let view_u = l.uniform("conv view", &view);
    let (n, p) = (patch_rows(&view), patch_layer(layer, &view, false));
    let patches = scratch(l, "conv patches", n * p.n_in);
    let channels = scratch(l, "conv rows", n * p.n_out);
    if !is_transposed(layer) {
        // The patches, their product with W (bias and ReLU in it), the rows back to NCHW.
        let act = patch_layer(layer, &view, layer.relu);
        let mut launches = vec![data_move(l, Move::Im2col, (&view, &view_u), (input, None, &patches))];
        launches.extend(linear::forward(l, &act, params, n, Forward { input: &patches, output: &channels }));
        let to_map = (&channels, Some(Bind::whole(&channels)), output);
        launches.push(data_move(l, Move::RowsToNchw, (&view, &view_u), to_map));
        launches
    } else {
        // The input as rows, their product with W (each row's contribution to every tap), the taps
        // summed into the output with its bias and ReLU.
        let out = ConvDims { relu: layer.relu as u32, ..view };
        let out_u = l.uniform("conv view", &out);
        let mut launches = vec![data_move(l, Move::NchwToRows, (&view, &view_u), (input, None, &channels))];
        let io = BackwardInput { d_output: &channels, mask: None, d_input: &patches };
        launches.extend(linear::backward_input(l, &p, params, n, io));
        launches.push(data_move(l, Move::Col2imBias, (&out, &out_u), (&patches, Some(bias), output)));
        launches
    }
}

/// Its backward pass: the input's gradient into `d_input` (when given, masked where the input, a
/// ReLU output, is 0), then the weight's and the bias's gradients into `grads` (when given).
pub fn backward(
    l: Launcher,
    layer: &Layer,
    c: &ConvShape,
    (params, grads): (&wgpu::Buffer, Option<&wgpu::Buffer>),
    rows: usize,
    (input, d_output): (&wgpu::Buffer, &wgpu::Buffer),
    d_input: Option<&wgpu::Buffer>,
) -> Vec<Launch> {
    let transposed = is_transposed(layer);
    let d = conv_dims(c, rows, layer.relu_input);
    let u = l.uniform("conv dims", &d);
    let weight = bind_range(WEIGHT, params, layer.weight_at, layer.weight_len());
    // Both variants: db = dy summed over images and positions.
    let bias = grads.map(|grads| {
        let d_bias = bind_range(DST, grads, layer.bias_at, layer.bias_len());
        l.over(Entry::ConvBackwardBias, &[bind(DIMS, &u), bind(SRC, d_output), d_bias], layer.bias_len())
    });
    let mut launches = Vec::new();
    if l.plan().conv() == ConvVariant::Direct {
        let (input_entry, weight_entry) = match transposed {
            false => (Entry::Conv2dBackwardInput, Entry::Conv2dBackwardWeight),
            true => (Entry::ConvTranspose2dBackwardInput, Entry::ConvTranspose2dBackwardWeight),
        };
        if let Some(d_input) = d_input {
            let binds = [bind(DIMS, &u), bind(SRC, d_output), weight, bind(AUX, input), bind(DST, d_input)];
            launches.push(l.over(input_entry, &binds, rows * layer.n_in).with_flops(flops(layer, rows)));
        }
        if let Some(grads) = grads {
            let d_weight = bind_range(DST, grads, layer.weight_at, layer.weight_len());
            let binds = [bind(DIMS, &u), bind(SRC, d_output), bind(AUX, input), d_weight];
            launches.push(l.over(weight_entry, &binds, layer.weight_len()).with_flops(flops(layer, rows)));
        }
        launches.extend(bias);
        return launches;
    }
    let view = conv_view(conv_dims(c, rows, false), transposed);
    let view_u = l.uniform("conv view", &view);
    let masked = ConvDims { relu: layer.relu_input as u32, ..view };
    let masked_u = l.uniform("conv view", &masked);
    let (n, p) = (patch_rows(&view), patch_layer(layer, &view, false));
    let patches = scratch(l, "conv patches", n * p.n_in);
    let channels = scratch(l, "conv rows", n * p.n_out);
    // The view's "out" side as rows and its "in" side as patches: a Conv2d's dy and x, a
    // ConvTranspose2d's x and dy. Then dW = rows^T patches, as a linear layer's.
    // Without `grads` (frozen layers) only what d_input needs: a Conv2d's dy rows, a
    // ConvTranspose2d's dy patches.
    let (out_side, in_side) = if transposed { (input, d_output) } else { (d_output, input) };
    if grads.is_some() || !transposed {
        launches.push(data_move(l, Move::NchwToRows, (&view, &view_u), (out_side, None, &channels)));
    }
    if grads.is_some() || transposed {
        let to_patches = (in_side, None, &patches);
        launches.push(data_move(l, Move::Im2col, (&view, &view_u), to_patches));
    }
    if let Some(d_input) = d_input {
        if !transposed {
            // d patches = dy rows W, summed back into the input's map.
            let d_patches = scratch(l, "conv d patches", n * p.n_in);
            let io = BackwardInput { d_output: &channels, mask: None, d_input: &d_patches };
            launches.extend(linear::backward_input(l, &p, params, n, io));
            let sum = (&d_patches, Some(Bind::whole(input)), d_input);
            launches.push(data_move(l, Move::Col2imMasked, (&masked, &masked_u), sum));
        } else {
            // dx rows = dy patches W^T (no bias), back to NCHW.
            let (zeros, d_rows) = (scratch(l, "zero bias", p.n_out), scratch(l, "conv d rows", n * p.n_out));
            let w = Weights { params, bias: Bind::whole(&zeros) };
            launches.extend(linear::forward_with_bias(l, &p, w, n, Forward { input: &patches, output: &d_rows }));
            let back = (&d_rows, Some(Bind::whole(input)), d_input);
            launches.push(data_move(l, Move::RowsToNchw, (&masked, &masked_u), back));
        }
    }
    if let Some(grads) = grads {
        launches.extend(linear::backward_weight(l, &p, grads, n, (&patches, &channels)));
    }
    launches.extend(bias);
    launches
}
