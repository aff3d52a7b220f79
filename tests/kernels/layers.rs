//! Every layer kind (network::LayerKind) through its launcher and its reference: a path with
//! layers of every kind, recorded by network/ on the GPU and walked by reference/network.rs on the
//! CPU, agrees in output, parameter gradients and input gradient, under either kernel family; and
//! each kind's reference backward matches finite differences of its forward. A new kind joins by
//! an entry in `examples`, and by a model that uses it trained against the reference trainer.
use crate::common::*;
use wgvae::gpu::align_floats;
use wgvae::network::conv_kinds::{Conv2d, ConvTranspose2d};
use wgvae::network::group_norm::GroupNorm;
use wgvae::network::{self, ConvShape, Layer, LayerKind};
use wgvae::reference::network as rn;

/// A layer of every kind at awkward sizes (odd sides, widths that are not multiples of 4), each
/// reading the previous one's output: (kind, n_in, n_out, ReLU on the output).
fn examples() -> Vec<(LayerKind, usize, usize, bool)> {
    let shape = |input, output, kernel, stride| ConvShape { input, output, kernel, stride, padding: 1 };
    let norm = |channels, groups, spatial| LayerKind::GroupNorm(GroupNorm { channels, groups, spatial });
    vec![
        (LayerKind::Conv2d(Conv2d(shape((2, 7, 9), (6, 3, 4), 4, 2))), 126, 72, false),
        // Groups of 2 channels x 12 positions: fewer values than a workgroup's 64 lanes.
        (norm(6, 3, 12), 72, 72, true),
        (LayerKind::Conv2d(Conv2d(shape((6, 3, 4), (5, 3, 4), 3, 1))), 72, 60, true),
        (LayerKind::ConvTranspose2d(ConvTranspose2d(shape((5, 3, 4), (3, 6, 8), 4, 2))), 60, 144, false),
        // One group of 144 values: more than 64, so lanes sum several.
        (norm(3, 1, 48), 144, 144, true),
        (LayerKind::ConvTranspose2d(ConvTranspose2d(shape((3, 6, 8), (2, 6, 8), 3, 1))), 144, 96, false),
        (LayerKind::Linear, 96, 7, false),
    ]
}

/// The layers placed in one flat parameter vector: (layers, its length).
fn placed(examples: &[(LayerKind, usize, usize, bool)], relu_input: &dyn Fn(usize) -> bool) -> (Vec<Layer>, usize) {
    let mut at = 0;
    let layers = examples
        .iter()
        .enumerate()
        .map(|(i, &(kind, n_in, n_out, relu))| {
            let mut layer = Layer { kind, n_in, n_out, relu, relu_input: relu_input(i), weight_at: at, bias_at: 0 };
            at += align_floats(layer.weight_len());
            layer.bias_at = at;
            at += align_floats(layer.bias_len());
            layer
        })
        .collect();
    (layers, at)
}

/// Initial parameters as the model builder sets them, plus noise, so that a kind whose PyTorch
/// initialisation is constant (a norm's weight 1, bias 0) is not tested at that one point only.
fn parameters(layers: &[Layer], len: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut params = random(len, seed, 0.2);
    for layer in layers {
        let [weight, bias] = layer.kind.computation().init(layer, &mut rng);
        for (p, w) in params[layer.weight_at..].iter_mut().zip(weight) {
            *p += w;
        }
        for (p, b) in params[layer.bias_at..].iter_mut().zip(bias) {
            *p += b;
        }
    }
    params
}

#[test]
fn layer_paths_should_match_the_reference_path() {
    let examples = examples();
    let (layers, at) = placed(&examples, &|i| i > 0 && examples[i - 1].3);
    let last = layers.len() - 1;
    let rows = 3;
    let (params, x) = (parameters(&layers, at, 21), random(rows * layers[0].n_in, 22, 1.0));
    let probe = random(rows * layers[last].n_out, 23, 1.0);

    let acts = rn::forward_path(&layers, &params, x.clone(), rows);
    let mut grads = vec![0.0; at];
    let dx = rn::backward_path(&layers, &params, Some(&mut grads), &acts, probe.clone(), rows, true).expect("dx");

    // Both kernel families on this adapter (for convolutions: the direct kernels, and the patches
    // with the matmuls).
    for family in [KernelFamily::Gpu, KernelFamily::Cpu] {
        let g = &gpu_with(family, true);
        let l = wgvae::gpu::Launcher { gpu: g, kernels: &gpu().1 };
        let (pb, gb, xb, dxb) = (storage(&params), storage(&vec![0.0; at]), storage(&x), storage(&vec![0.0; x.len()]));
        let (outs, d_outs) =
            (network::activations(g, "out", &layers, rows), network::activations(g, "d out", &layers, rows));
        g.queue.write_buffer(&d_outs[last], 0, bytemuck::cast_slice(&probe));
        let mut launches = network::forward_path(l, &pb, &layers, rows, &xb, &outs);
        launches.extend(network::backward_path(l, (&pb, &gb), &layers, rows, (&xb, &outs, &d_outs), Some(&dxb)));
        for launch in launches {
            run(launch);
        }
        let variant = format!("{family:?} family, {:?} convolutions", g.plan().conv());
        assert_close(
            &format!("{variant}: path output"),
            &read(&outs[last], acts[last + 1].len()),
            &acts[last + 1],
            1e-4,
        );
        assert_close(&format!("{variant}: parameter gradients"), &read(&gb, at), &grads, 1e-4);
        assert_close(&format!("{variant}: input gradient"), &read(&dxb, x.len()), &dx, 1e-4);
        // Frozen layers (refine's decoder): the input gradient alone.
        let frozen = storage(&vec![0.0; x.len()]);
        for launch in network::backward_inputs(l, &pb, &layers, rows, (&xb, &outs, &d_outs), &frozen) {
            run(launch);
        }
        assert_close(&format!("{variant}: frozen path input gradient"), &read(&frozen, x.len()), &dx, 1e-4);
    }
}

/// Each kind alone, without ReLUs (whose kinks finite differences cannot cross): L = sum(probe *
/// layer(x)); its reference backward against central differences in x, the weight and the bias.
#[test]
fn layer_backward_references_should_match_finite_differences() {
    let rows = 2;
    for (k, example) in examples().into_iter().enumerate() {
        let (layers, at) = placed(&[(example.0, example.1, example.2, false)], &|_| false);
        let layer = layers[0];
        let (params, x) = (parameters(&layers, at, 40 + k as u64), random(rows * layer.n_in, 50 + k as u64, 1.0));
        let probe = random(rows * layer.n_out, 60 + k as u64, 1.0);
        let loss = |params: &[f32], x: &[f32]| dot(&probe, &rn::layer_forward(&layer, params, x, rows));
        let mut grads = vec![0.0; at];
        rn::layer_backward_params(&layer, &mut grads, &x, &probe, rows);
        let dx = rn::layer_backward_input(&layer, &params, &x, &probe, rows);
        let name = |what: &str| format!("{:?} {what}", layer.kind);
        check_grad(&name("dx"), &|x| loss(&params, x), &always, &x, &dx);
        for (what, from, len) in [("dW", layer.weight_at, layer.weight_len()), ("db", layer.bias_at, layer.bias_len())]
        {
            let at_tensor = |t: &[f32]| {
                let mut p = params.clone();
                p[from..from + len].copy_from_slice(t);
                loss(&p, &x)
            };
            check_grad(&name(what), &at_tensor, &always, &params[from..from + len], &grads[from..from + len]);
        }
    }
}

/// GroupNorm in a conv VAE (28 x 28 -> 4 x 14 x 14 -> 6 x 7 x 7, 2 groups after each hidden
/// convolution): training steps on the GPU against the reference trainer's.
#[test]
fn gpu_training_steps_should_match_reference_trainer_with_group_norm() {
    use crate::training::Case;
    let norm = |a: &mut wgvae::model::Architecture| (a.conv, a.group_norm) = (Some(vec![4, 6]), Some(2));
    Case::new(45, 6).arch(norm).check();
    Case::new(45, 4).arch(norm).gaussian().check();
}
