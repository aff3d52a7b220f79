//! nn.Conv2d and nn.ConvTranspose2d as layer kinds: their shapes and their launches
//! (network/conv.rs).
use super::conv::{self, backward, forward};
use super::{ConvShape, Kind, Layer, LayerKind};
use crate::gpu::{Launch, Launcher};
use wgpu::Buffer;

/// nn.Conv2d on NCHW rows, W [c_out, c_in, k, k].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d(pub ConvShape);

/// nn.ConvTranspose2d on NCHW rows, W [c_in, c_out, k, k].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2d(pub ConvShape);

/// The bytes of the patch buffer the Gemm variant needs for a convolution `layer` over `rows`
/// images, and the patch rows (the matrix products' row count): what fits.rs checks against the
/// adapter. None for other kinds.
pub fn gemm_sizes(layer: &Layer, rows: usize) -> Option<(u64, usize)> {
    match layer.kind {
        LayerKind::Conv2d(Conv2d(c)) => Some(conv::gemm_sizes(layer, &c, false, rows)),
        LayerKind::ConvTranspose2d(ConvTranspose2d(c)) => Some(conv::gemm_sizes(layer, &c, true, rows)),
        _ => None,
    }
}

/// What the two kinds share; they differ in the weight's layout and the direction of the taps.
trait Convolution {
    const TRANSPOSED: bool;
    fn shape(&self) -> &ConvShape;
}

impl Convolution for Conv2d {
    const TRANSPOSED: bool = false;
    fn shape(&self) -> &ConvShape {
        &self.0
    }
}

impl Convolution for ConvTranspose2d {
    const TRANSPOSED: bool = true;
    fn shape(&self) -> &ConvShape {
        &self.0
    }
}

impl<T: Convolution + super::Mirror> Kind for T {
    fn shapes(&self, _: &Layer) -> [Vec<usize>; 2] {
        let c = self.shape();
        // Conv2d [c_out, c_in, k, k]; ConvTranspose2d [c_in, c_out, k, k]. The bias is per out channel.
        let (rows, cols) = if T::TRANSPOSED { (c.input.0, c.output.0) } else { (c.output.0, c.input.0) };
        [vec![rows, cols, c.kernel, c.kernel], vec![c.output.0]]
    }

    fn macs_per_row(&self, layer: &Layer) -> usize {
        let c = self.shape();
        // Padding taps included: a Conv2d's taps per output position, a ConvTranspose2d's per input.
        let (h, w) = if T::TRANSPOSED { (c.input.1, c.input.2) } else { (c.output.1, c.output.2) };
        h * w * layer.weight_len()
    }

    fn forward(&self, l: Launcher, layer: &Layer, params: &Buffer, rows: usize, io: (&Buffer, &Buffer)) -> Vec<Launch> {
        forward(l, layer, self.shape(), params, rows, io)
    }

    fn backward(
        &self,
        l: Launcher,
        layer: &Layer,
        weights: (&Buffer, Option<&Buffer>),
        rows: usize,
        saved: (&Buffer, &Buffer),
        d_input: Option<&Buffer>,
    ) -> Vec<Launch> {
        backward(l, layer, self.shape(), weights, rows, saved, d_input)
    }
}
