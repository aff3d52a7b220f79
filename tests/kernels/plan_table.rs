//! `devices --plan` prints, per linear product, the launches LinearKernel::launches lists; the
//! launchers (network/linear/cpu.rs and tiled.rs) make theirs separately. Here both are
//! set side by side for every kernel family and subgroup choice, over layer shapes and row counts
//! that reach every rule of the plan (one tile, several slices, narrow and wide products): the
//! same entry points with the same grids, in the same order.
use crate::common::*;
use wgvae::network::linear::{self, tiled as linear_tiled, BackwardInput, Forward};
use wgvae::network::{Layer, LayerKind};
use wgvae::plan::linear::Groups;
use wgvae::plan::LinearOp;

/// (entry point, workgroups) of each launch.
fn described(launches: &[Launch]) -> Vec<(String, [u32; 3])> {
    launches.iter().map(|l| (l.name.to_string(), l.workgroups)).collect()
}

#[test]
fn plan_table_should_list_the_launches_the_launchers_make() {
    let shapes = [(784, 400), (400, 40), (20, 400), (400, 784), (48, 8), (150, 5), (9, 3), (3136, 40)];
    for family in [KernelFamily::Gpu, KernelFamily::Cpu] {
        for subgroups in [true, false] {
            let g = &gpu_with(family, subgroups);
            let l = wgvae::gpu::Launcher { gpu: g, kernels: &gpu().1 };
            for ((n_in, n_out), rows) in shapes.iter().flat_map(|&s| [1, 13, 128, 700].map(|r| (s, r))) {
                let layer = Layer {
                    kind: LayerKind::Linear,
                    n_in,
                    n_out,
                    relu: true,
                    relu_input: true,
                    weight_at: 0,
                    bias_at: wgvae::gpu::align_floats(n_in * n_out),
                };
                let params = storage(&vec![0.0; layer.bias_at + n_out]);
                // What the plan lists for `op` (`gathered`: the first layer's gathering forward).
                let planned = |op: LinearOp, gathered: bool| -> Vec<(String, [u32; 3])> {
                    let shape = (n_in, n_out);
                    let launches = g.plan().linear(shape, op, rows).launches(shape, op, rows, gathered);
                    let grid = |groups| match groups {
                        Groups::Grid(grid) => grid,
                        Groups::Over(n) => g.grid_1d(n),
                    };
                    launches.into_iter().map(|(entry, groups)| (entry.name().to_string(), grid(groups))).collect()
                };
                let (x, y) = (storage(&vec![0.0; rows * n_in]), storage(&vec![0.0; rows * n_out]));
                for op in [LinearOp::Forward, LinearOp::BackwardInput, LinearOp::BackwardWeight] {
                    let made = match op {
                        LinearOp::Forward => {
                            linear::forward(l, &layer, &params, rows, Forward { input: &x, output: &y })
                        }
                        LinearOp::BackwardInput => {
                            let io = BackwardInput { d_output: &y, mask: Some(&x), d_input: &x };
                            linear::backward_input(l, &layer, &params, rows, io)
                        }
                        LinearOp::BackwardWeight => linear::backward_weight(l, &layer, &params, rows, (&x, &y)),
                    };
                    let case = format!("{family:?} subgroups {subgroups}: {op:?} of {n_in} -> {n_out} x {rows}");
                    assert_eq!(described(&made), planned(op, false), "{case}");
                }
                // A first layer that gathers its batch inside the forward product.
                if n_in % 4 == 0 && g.plan().first_layer_gathers((n_in, n_out), rows) {
                    let (words, ids) = ((n_in / 4) as u32, storage(&vec![0.0; rows]));
                    let counters = storage(&[0.0; 4]);
                    let gather = GatherParams {
                        batch: rows as u32,
                        words,
                        pass_rows: rows as u32,
                        ..bytemuck::Zeroable::zeroed()
                    };
                    let input = linear_tiled::GatheredInput {
                        images: &x,
                        order: &ids,
                        counters: &counters,
                        x: &x,
                        params: gather,
                    };
                    let made = linear_tiled::forward_gathered(l, &layer, &params, &input, &y);
                    assert_eq!(
                        described(&made),
                        planned(LinearOp::Forward, true),
                        "gathered {n_in} -> {n_out} x {rows}"
                    );
                }
            }
        }
    }
}
