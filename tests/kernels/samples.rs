//! shaders/rows.wgsl and shaders/samples.wgsl: several samples per input, IWAE, the score function.
use crate::common::*;
use wgvae::reference::samples as rs;

// 5 inputs x 3 samples = 15 rows; latent 7.
const INPUTS: usize = 5;
const S: usize = 3;
const ROWS: usize = INPUTS * S;

#[test]
fn repeat_rows_and_sum_row_groups_should_match_reference() {
    let width = 2 * LATENT;
    let p = uniform(&RowParams { inputs: INPUTS as u32, samples: S as u32, width: width as u32, pad: 0 });
    let per_input = random(INPUTS * width, 60, 1.0);
    let (src, dst) = (storage(&per_input), storage(&vec![0.0; ROWS * width]));
    run(gpu().1.get(Entry::RepeatRows).launch_over(
        &gpu().0,
        &[bind(shaders::rows::PARAMS, &p), bind(shaders::rows::SRC, &src), bind(shaders::rows::DST, &dst)],
        ROWS * width,
    ));
    assert_close("repeat_rows", &read(&dst, ROWS * width), &rs::repeat_rows(&per_input, INPUTS, S, width), 0.0);
    let per_sample = random(ROWS * width, 61, 1.0);
    let (src, dst) = (storage(&per_sample), storage(&vec![0.0; INPUTS * width]));
    run(gpu().1.get(Entry::SumRowGroups).launch_over(
        &gpu().0,
        &[bind(shaders::rows::PARAMS, &p), bind(shaders::rows::SRC, &src), bind(shaders::rows::DST, &dst)],
        INPUTS * width,
    ));
    assert_close(
        "sum_row_groups",
        &read(&dst, INPUTS * width),
        &rs::sum_row_groups(&per_sample, INPUTS, S, width),
        1e-6,
    );
}

fn params(baseline: u32, beta: f32, warmup_steps: u32) -> wgpu::Buffer {
    uniform(&SampleParams {
        rows: ROWS as u32,
        samples: S as u32,
        latent: LATENT as u32,
        baseline,
        beta,
        warmup_steps,
        decay: 0.9,
        pad: 0,
    })
}

fn launch(entry: Entry, p: &wgpu::Buffer, binds: &[(u32, &wgpu::Buffer)], invocations: usize) {
    let mut all = vec![bind(shaders::samples::PARAMS, p)];
    all.extend(binds.iter().map(|&(i, b)| bind(i, b)));
    let kernel = gpu().1.get(entry);
    // A one-invocation kernel (workgroup size 1) runs as one workgroup; the others are 1-D grids.
    run(match entry.workgroup_size()[0] {
        1 => kernel.launch(&gpu().0, &all, [1, 1, 1]),
        _ => kernel.launch_over(&gpu().0, &all, invocations),
    });
}

#[test]
fn log_weight_forward_should_match_reference_with_a_warming_kl_weight() {
    let (mulv, eps, z, rec) = (
        random(ROWS * 2 * LATENT, 62, 1.5),
        random(ROWS * LATENT, 63, 2.0),
        random(ROWS * LATENT, 64, 2.0),
        random(ROWS, 65, 300.0),
    );
    let cb = gpu::storage_with(&gpu().0, "c", &[counters(3, 0)]);
    let (mb, eb, zb, rb, wb) = (storage(&mulv), storage(&eps), storage(&z), storage(&rec), storage(&[0.0; ROWS]));
    launch(
        Entry::LogWeightForward,
        &params(0, 0.8, 10),
        &[
            (shaders::samples::COUNTERS, &cb),
            (shaders::samples::MULV, &mb),
            (shaders::samples::EPS, &eb),
            (shaders::samples::Z, &zb),
            (shaders::samples::REC, &rb),
            (shaders::samples::LOG_W, &wb),
        ],
        ROWS,
    );
    let want = rs::log_weight_forward(&mulv, &eps, &z, &rec, LATENT, r::kl_weight(0.8, 10, 3));
    assert_close("log_weight_forward", &read(&wb, ROWS), &want, 1e-5);
}

#[test]
fn iwae_weights_should_match_reference() {
    // Log weights near -700: exp without the max would underflow to 0 / 0.
    let log_w: Vec<f32> = random(ROWS, 66, 20.0).iter().map(|v| v - 700.0).collect();
    let (wb, cb) = (storage(&log_w), storage(&[0.0; ROWS]));
    launch(
        Entry::IwaeWeights,
        &params(0, 1.0, 0),
        &[(shaders::samples::LOG_W, &wb), (shaders::samples::COEF, &cb)],
        INPUTS,
    );
    let got = read(&cb, ROWS);
    assert_close("iwae_weights", &got, &rs::iwae_weights(&log_w, S), 1e-5);
    for group in got.chunks(S) {
        assert!((group.iter().sum::<f32>() - 1.0).abs() < 1e-5, "weights of an input sum to 1: {group:?}");
    }
}

#[test]
fn sampled_latent_backward_should_match_reference() {
    let (mulv, eps, z) =
        (random(ROWS * 2 * LATENT, 67, 1.5), random(ROWS * LATENT, 68, 2.0), random(ROWS * LATENT, 69, 2.0));
    let (coef, dz) = (random(ROWS, 70, 1.0), random(ROWS * LATENT, 71, 1.0));
    let (mb, eb, zb, cb, dzb, db) =
        (storage(&mulv), storage(&eps), storage(&z), storage(&coef), storage(&dz), storage(&[0.0; ROWS * 2 * LATENT]));
    launch(
        Entry::SampledLatentBackward,
        &params(0, 1.0, 0),
        &[
            (shaders::samples::MULV, &mb),
            (shaders::samples::EPS, &eb),
            (shaders::samples::Z, &zb),
            (shaders::samples::COEF, &cb),
            (shaders::samples::DZ, &dzb),
            (shaders::samples::DMULV, &db),
        ],
        ROWS * LATENT,
    );
    assert_close(
        "sampled_latent_backward",
        &read(&db, ROWS * 2 * LATENT),
        &rs::sampled_latent_backward(&mulv, &eps, &z, &coef, &dz, LATENT),
        1e-5,
    );
}

#[test]
fn score_backward_and_baseline_update_should_match_reference_for_every_baseline() {
    let (mulv, eps) = (random(ROWS * 2 * LATENT, 72, 1.5), random(ROWS * LATENT, 73, 2.0));
    let log_w: Vec<f32> = random(ROWS, 74, 40.0).iter().map(|v| v - 250.0).collect();
    for (baseline, state) in [(0u32, [0.0f32, 0.0]), (1, [0.0, 0.0]), (1, [-240.0, 1.0]), (2, [0.0, 0.0])] {
        let (mb, eb, wb, db, bb) =
            (storage(&mulv), storage(&eps), storage(&log_w), storage(&[0.0; ROWS * 2 * LATENT]), storage(&state));
        let p = params(baseline, 1.0, 0);
        launch(
            Entry::ScoreBackward,
            &p,
            &[
                (shaders::samples::MULV, &mb),
                (shaders::samples::EPS, &eb),
                (shaders::samples::LOG_W, &wb),
                (shaders::samples::DMULV, &db),
                (shaders::samples::BASELINE, &bb),
            ],
            ROWS * LATENT,
        );
        assert_close(
            &format!("score_backward baseline {baseline} state {state:?}"),
            &read(&db, ROWS * 2 * LATENT),
            &rs::score_backward(&mulv, &eps, &log_w, LATENT, S, baseline, state),
            1e-5,
        );
        launch(Entry::ScoreBaselineUpdate, &p, &[(shaders::samples::LOG_W, &wb), (shaders::samples::BASELINE, &bb)], 1);
        assert_close("score_baseline_update", &read(&bb, 2), &rs::score_baseline_update(&log_w, state, 0.9), 1e-6);
    }
}

#[test]
fn score_baseline_update_kernels_should_match_reference_past_a_workgroup() {
    // Both kernels (one invocation; 64 lanes and a tree) at 15 rows and at 150 (two full passes of
    // the lanes and a partial one), from an unset baseline and from a running one.
    type Reference = fn(&[f32], [f32; 2], f32) -> [f32; 2];
    let kernels: [(Entry, Reference); 2] = [
        (Entry::ScoreBaselineUpdate, rs::score_baseline_update),
        (Entry::ScoreBaselineUpdateTree, rs::score_baseline_update_tree),
    ];
    for (entry, reference) in kernels {
        for rows in [ROWS, 150] {
            let log_w = random(rows, 70, 50.0);
            for state in [[0.0, 0.0], [-80.0, 1.0]] {
                let p = uniform(&SampleParams {
                    rows: rows as u32,
                    samples: S as u32,
                    latent: LATENT as u32,
                    baseline: 1,
                    beta: 1.0,
                    warmup_steps: 0,
                    decay: 0.9,
                    pad: 0,
                });
                let (wb, bb) = (storage(&log_w), storage(&state));
                let binds = [
                    bind(shaders::samples::PARAMS, &p),
                    bind(shaders::samples::LOG_W, &wb),
                    bind(shaders::samples::BASELINE, &bb),
                ];
                run(gpu().1.get(entry).launch(&gpu().0, &binds, [1, 1, 1]));
                let name = format!("{} rows {rows} state {state:?}", entry.name());
                assert_close(&name, &read(&bb, 2), &reference(&log_w, state, 0.9), 1e-5);
            }
        }
    }
}
