//! GpuTrainer::new: every buffer the model needs and the launch lists (the training step, encode,
//! evaluation, decode), each recorded once. The step is assembled at the end as an ordered list.
use super::{GpuSplit, GpuTrainer};
use crate::config::TrainSettings;
use crate::data::Split;
use crate::gpu::kernels::{bind, bind_range};
use crate::gpu::params::*;
use crate::gpu::{self, Gpu, Kernels, Launch};
use crate::launches::{Gather, StepEnd};
use crate::model::{Layer, Model};
use crate::network::{self, LinearOp};
use crate::objective::{Baseline, Estimator, Objective, BASELINE_DECAY};
use crate::shaders::{self, Entry};

impl GpuTrainer {
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        model: Model,
        settings: TrainSettings,
        params: &[f32],
        train: &Split,
        val: &Split,
    ) -> GpuTrainer {
        let b = settings.batch;
        let obj = settings.objective.clone();
        let samples = obj.samples;
        let rows = b * samples; // the latent layer and the decoder work on one row per sample
        let input = model.arch.input();
        let latent = model.arch.latent;
        let enc_out = model.arch.encoder_outputs(); // [mu | logvar], or categorical logits
        let f32s = |n: usize| n * 4;
        let steps_per_epoch = train.len() / b;
        let val_steps = val.len().div_ceil(b);
        let split = |name: &str, s: &Split, order_len: usize| GpuSplit {
            images: gpu::images_with(gpu, &format!("{name} images"), &s.images),
            labels: gpu::storage_with(
                gpu,
                &format!("{name} labels"),
                &s.labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
            ),
            order: gpu::storage_with(
                gpu,
                &format!("{name} order"),
                &(0..order_len as u32).map(|i| i.min(s.len() as u32 - 1)).collect::<Vec<_>>(),
            ),
            rows: s.len(),
        };
        let train_split = split("train", train, train.len());
        let val_split = split("validation", val, val_steps * b);

        let params_buf = gpu::storage_with(gpu, "params", params);
        let grads = gpu::storage_zeroed(gpu, "grads", f32s(model.param_count));
        let adam_m = gpu::storage_zeroed(gpu, "adam m", f32s(model.param_count));
        let adam_v = gpu::storage_zeroed(gpu, "adam v", f32s(model.param_count));
        let counters = gpu::storage_with(gpu, "counters", &[Counters::new()]);
        let totals = gpu::storage_with(gpu, "totals", &[LossTotals::default()]);
        let baseline = gpu::storage_zeroed(gpu, "baseline", 16);

        // Activations: x -> enc[0] -> ... -> enc[last] = mulv [B]; mulv repeated per sample -> eps, z [R];
        // z -> dec[0] -> ... -> dec[last] = logits [R]. Each activation has a gradient buffer of its shape.
        let x = gpu::storage_zeroed(gpu, "x", f32s(b * input));
        let enc = network::activations(gpu, "encoder out ", &model.encoder, b);
        let dec = network::activations(gpu, "decoder out ", &model.decoder, rows);
        let d_enc = network::activations(gpu, "d encoder out ", &model.encoder, b);
        let d_dec = network::activations(gpu, "d decoder out ", &model.decoder, rows);
        let eps = gpu::storage_zeroed(gpu, "eps", f32s(rows * latent));
        let z = gpu::storage_zeroed(gpu, "z", f32s(rows * latent));
        let dz = gpu::storage_zeroed(gpu, "dz", f32s(rows * latent));
        let rec = gpu::storage_zeroed(gpu, "rec", f32s(rows));
        let kl = gpu::storage_zeroed(gpu, "kl", f32s(rows));
        let log_w = gpu::storage_zeroed(gpu, "log w", f32s(rows));
        // Each row's weight in the objective: 1 / samples, or IWAE's normalised weights (rewritten each step).
        let coef = gpu::storage_with(gpu, "coef", &vec![1.0 / samples as f32; rows]);
        let mulv = enc.last().expect("encoder has a layer").clone();
        let d_mulv = d_enc.last().expect("encoder has a layer").clone();
        // Per-sample copies of q(z|x) and its gradient; the per-input buffers themselves for one sample.
        let (mulv_s, d_mulv_s) = if samples > 1 {
            (
                gpu::storage_zeroed(gpu, "mulv per sample", f32s(rows * enc_out)),
                gpu::storage_zeroed(gpu, "d mulv per sample", f32s(rows * enc_out)),
            )
        } else {
            (mulv.clone(), d_mulv.clone())
        };
        let logits = dec.last().expect("decoder has a layer").clone();

        // A conditional model's extra buffers: labels y, the inputs with their one-hot class block
        // appended (xc [B, input + cb], zc [R, latent + cb]), the one-hot alone (yc [B, cb]) and
        // the prior's output p(z|y) [B, 2 latent] with its gradient, per input and per sample.
        let cb = model.arch.class_block();
        let cond = model.prior.is_some();
        let y = gpu::storage_zeroed(gpu, "labels y", 4 * b);
        let decode_labels = gpu::storage_zeroed(gpu, "decode labels", 4 * rows);
        let sized = |label: &str, n: usize| {
            if cond {
                gpu::storage_zeroed(gpu, label, f32s(n))
            } else {
                gpu::storage_zeroed(gpu, label, 16)
            }
        };
        let (xc, zc, dzc, yc) = (
            sized("x with class", b * (input + cb)),
            sized("z with class", rows * (latent + cb)),
            sized("dz with class", rows * (latent + cb)),
            sized("one-hot class", b * cb),
        );
        let (mulv_p, dprior) = (sized("prior mulv", b * 2 * latent), sized("d prior mulv", b * 2 * latent));
        let (mulv_p_s, dprior_s) = if samples > 1 {
            (sized("prior mulv per sample", rows * 2 * latent), sized("d prior mulv per sample", rows * 2 * latent))
        } else {
            (mulv_p.clone(), dprior.clone())
        };
        let (enc_in, dec_in, d_dec_in) = if cond { (&xc, &zc, &dzc) } else { (&x, &z, &dz) };
        // Per-datapoint inference: the table [training images, 2 latent] starts at q = N(0, I).
        let table = obj
            .per_datapoint
            .map(|_| ["table", "table m", "table v"].map(|l| gpu::storage_zeroed(gpu, l, f32s(train.len() * enc_out))));

        let k = |entry: Entry| kernels.get(entry);
        let w_of = |l: &Layer| (l.weight_at, l.n_in * l.n_out);
        let b_of = |l: &Layer| (l.bias_at, l.n_out);
        let kernel = |op: LinearOp, l: &Layer| network::linear_kernel(kernels, op, l);
        // Backward of one layer over `n` rows: its parameters' gradients, and its input's gradient when wanted.
        let backward =
            |l: &Layer, n: usize, input: &wgpu::Buffer, d_output: &wgpu::Buffer, d_input: Option<&wgpu::Buffer>| {
                let mut launches = Vec::new();
                if let Some(d_input) = d_input {
                    launches.push(network::backward_input(gpu, kernels, &params_buf, l, n, d_output, input, d_input));
                }
                let u = network::dims(gpu, l, n, false);
                let (wa, wn) = w_of(l);
                let (ba, bn) = b_of(l);
                launches.push(kernel(LinearOp::BackwardWeight, l).launch(
                    gpu,
                    &[
                        bind(shaders::linear::DIMS, &u),
                        bind(shaders::linear::LHS, d_output),
                        bind(shaders::linear::RHS, input),
                        bind_range(shaders::linear::OUT, &grads, wa, wn),
                    ],
                    network::linear_groups(l.n_out, l.n_in),
                ));
                launches.push(k(Entry::LinearBackwardBias).launch_over(
                    gpu,
                    &[
                        bind(shaders::linear::DIMS, &u),
                        bind(shaders::linear::LHS, d_output),
                        bind_range(shaders::linear::OUT, &grads, ba, bn),
                    ],
                    l.n_out,
                ));
                launches
            };

        let gather = |s: &GpuSplit, pass_rows: usize| {
            let (binarize, seed) = (settings.binarize, settings.seed);
            let (images, order, counters, x) = (&s.images, &s.order, &counters, &x);
            Gather { images, order, counters, x, rows: b, pixels: input, pass_rows, binarize, seed }
                .launch(gpu, kernels)
        };
        let gather_labels = |s: &GpuSplit, pass_rows: usize| {
            let p = GatherParams {
                batch: b as u32,
                words: 0,
                pass_rows: pass_rows as u32,
                binarize: 0,
                seed: 0,
                stream: 0,
                pad: [0; 2],
            };
            let u = gpu::uniform_with(gpu, "gather labels params", &p);
            k(Entry::GatherLabels).launch_over(
                gpu,
                &[
                    bind(shaders::data::PARAMS, &u),
                    bind(shaders::data::COUNTERS, &counters),
                    bind(shaders::data::ORDER, &s.order),
                    bind(shaders::data::LABELS, &s.labels),
                    bind(shaders::data::Y, &y),
                ],
                b,
            )
        };
        // dst[.., dst_offset..] = src columns, or the one-hot of `labels` (one label per `repeat` rows).
        let copy_columns = |n: usize,
                            (src, src_w, src_off): (&wgpu::Buffer, usize, usize),
                            (dst, dst_w, dst_off): (&wgpu::Buffer, usize, usize),
                            count: usize| {
            let u = gpu::uniform_with(
                gpu,
                "column params",
                &ColumnParams {
                    rows: n as u32,
                    src_width: src_w as u32,
                    dst_width: dst_w as u32,
                    count: count as u32,
                    src_offset: src_off as u32,
                    dst_offset: dst_off as u32,
                    repeat: 1,
                    pad: 0,
                },
            );
            k(Entry::CopyColumns).launch_over(
                gpu,
                &[
                    bind(shaders::condition::PARAMS, &u),
                    bind(shaders::condition::SRC, src),
                    bind(shaders::condition::DST, dst),
                ],
                n * count,
            )
        };
        let one_hot =
            |n: usize, labels: &wgpu::Buffer, repeat: usize, (dst, dst_w, dst_off): (&wgpu::Buffer, usize, usize)| {
                let u = gpu::uniform_with(
                    gpu,
                    "one-hot params",
                    &ColumnParams {
                        rows: n as u32,
                        src_width: 0,
                        dst_width: dst_w as u32,
                        count: cb as u32,
                        src_offset: 0,
                        dst_offset: dst_off as u32,
                        repeat: repeat as u32,
                        pad: 0,
                    },
                );
                k(Entry::OneHotColumns).launch_over(
                    gpu,
                    &[
                        bind(shaders::condition::PARAMS, &u),
                        bind(shaders::condition::DST, dst),
                        bind(shaders::condition::LABELS, labels),
                    ],
                    n * cb,
                )
            };
        // Conditional: the batch's labels, [x | onehot(y)], onehot(y), and the prior p(z|y) per sample.
        let condition_inputs = |s: &GpuSplit, pass_rows: usize| -> Vec<Launch> {
            let Some(prior) = &model.prior else { return Vec::new() };
            let mut launches = vec![
                gather_labels(s, pass_rows),
                copy_columns(b, (&x, input, 0), (&xc, input + cb, 0), input),
                one_hot(b, &y, 1, (&xc, input + cb, input)),
                one_hot(b, &y, 1, (&yc, cb, 0)),
                network::forward(gpu, kernels, &params_buf, prior, b, &yc, &mulv_p),
            ];
            if samples > 1 {
                let u = gpu::uniform_with(
                    gpu,
                    "row params",
                    &RowParams { inputs: b as u32, samples: samples as u32, width: (2 * latent) as u32, pad: 0 },
                );
                launches.push(k(Entry::RepeatRows).launch_over(
                    gpu,
                    &[
                        bind(shaders::rows::PARAMS, &u),
                        bind(shaders::rows::SRC, &mulv_p),
                        bind(shaders::rows::DST, &mulv_p_s),
                    ],
                    rows * 2 * latent,
                ));
            }
            launches
        };
        // Conditional: [z | onehot(y)] for the decoder, from `labels` (one per `repeat` rows).
        let condition_z = |labels: &wgpu::Buffer, repeat: usize| -> Vec<Launch> {
            if !cond {
                return Vec::new();
            }
            vec![
                copy_columns(rows, (&z, latent, 0), (&zc, latent + cb, 0), latent),
                one_hot(rows, labels, repeat, (&zc, latent + cb, latent)),
            ]
        };
        let row_params = gpu::uniform_with(
            gpu,
            "row params",
            &RowParams { inputs: b as u32, samples: samples as u32, width: enc_out as u32, pad: 0 },
        );
        let repeat_mulv = (samples > 1).then(|| {
            k(Entry::RepeatRows).launch_over(
                gpu,
                &[
                    bind(shaders::rows::PARAMS, &row_params),
                    bind(shaders::rows::SRC, &mulv),
                    bind(shaders::rows::DST, &mulv_s),
                ],
                rows * enc_out,
            )
        });
        // Categorical latents: Gumbel-softmax sampling and the KL to the uniform prior.
        let (groups, categories) = model.arch.categorical.unwrap_or((0, 0));
        let categorical_params = |stream: u32| {
            gpu::uniform_with(
                gpu,
                "categorical params",
                &CategoricalParams {
                    rows: rows as u32,
                    groups: groups as u32,
                    categories: categories as u32,
                    seed: settings.seed,
                    stream,
                    anneal_steps: settings.anneal_steps,
                    tau_start: settings.tau_start,
                    tau_end: settings.tau_end,
                    beta: obj.beta,
                    warmup_steps: obj.warmup_steps,
                    sample_scale: 1.0 / samples as f32,
                    pad: 0,
                },
            )
        };
        let (train_categorical, eval_categorical) =
            (categorical_params(STREAM_TRAIN_EPS), categorical_params(STREAM_EVAL_EPS));
        let latent_params = |stream: u32| {
            let p = LatentParams {
                batch: rows as u32,
                latent: latent as u32,
                seed: settings.seed,
                stream,
                beta: obj.beta,
                warmup_steps: obj.warmup_steps,
                free_bits: obj.free_bits,
                sample_scale: 1.0 / samples as f32,
            };
            gpu::uniform_with(gpu, "latent params", &p)
        };
        let train_latent = latent_params(STREAM_TRAIN_EPS);
        let eval_latent = latent_params(STREAM_EVAL_EPS);
        // z from q(z|x): mu + sigma eps, or the Gumbel-softmax sample of the logits (eps holds the noise).
        let sample_latent = |training: bool| {
            if model.arch.categorical.is_some() {
                let u = if training { &train_categorical } else { &eval_categorical };
                k(Entry::GumbelSoftmaxForward).launch_over(
                    gpu,
                    &[
                        bind(shaders::categorical::PARAMS, u),
                        bind(shaders::categorical::COUNTERS, &counters),
                        bind(shaders::categorical::LOGITS, &mulv_s),
                        bind(shaders::categorical::NOISE, &eps),
                        bind(shaders::categorical::Z, &z),
                    ],
                    rows * groups,
                )
            } else {
                let u = if training { &train_latent } else { &eval_latent };
                k(Entry::ReparamForward).launch_over(
                    gpu,
                    &[
                        bind(shaders::latent::PARAMS, u),
                        bind(shaders::latent::COUNTERS, &counters),
                        bind(shaders::latent::MULV, &mulv_s),
                        bind(shaders::latent::EPS, &eps),
                        bind(shaders::latent::Z, &z),
                    ],
                    (rows * latent).div_ceil(4),
                )
            }
        };
        let loss_params = |pass_rows: usize, training: bool| {
            let p = LossParams {
                batch: rows as u32,
                pixels: input as u32,
                pass_rows: pass_rows as u32,
                training: training as u32,
                repeat: samples as u32,
                fixed_batch: 0,
                pad: [0; 2],
            };
            gpu::uniform_with(gpu, "loss params", &p)
        };
        let train_loss = loss_params(steps_per_epoch * b, true);
        let eval_loss = loss_params(val.len(), false);
        let (rec_forward_name, rec_backward_name) = model.arch.decoder.loss_kernels();
        let losses = |u: &wgpu::Buffer| {
            vec![
                k(rec_forward_name).launch_over(
                    gpu,
                    &[
                        bind(shaders::loss::PARAMS, u),
                        bind(shaders::loss::LOGITS, &logits),
                        bind(shaders::loss::X, &x),
                        bind(shaders::loss::REC, &rec),
                    ],
                    rows,
                ),
                if cond {
                    k(Entry::GaussianKl2Forward).launch_over(
                        gpu,
                        &[
                            bind(shaders::latent::PARAMS, &train_latent),
                            bind(shaders::latent::MULV, &mulv_s),
                            bind(shaders::latent::KL, &kl),
                            bind(shaders::latent::PRIOR, &mulv_p_s),
                        ],
                        rows,
                    )
                } else if model.arch.categorical.is_some() {
                    k(Entry::CategoricalKlForward).launch_over(
                        gpu,
                        &[
                            bind(shaders::categorical::PARAMS, &train_categorical),
                            bind(shaders::categorical::LOGITS, &mulv_s),
                            bind(shaders::categorical::KL, &kl),
                        ],
                        rows,
                    )
                } else {
                    k(Entry::GaussianKlForward).launch_over(
                        gpu,
                        &[
                            bind(shaders::latent::PARAMS, &train_latent),
                            bind(shaders::latent::MULV, &mulv_s),
                            bind(shaders::latent::KL, &kl),
                        ],
                        rows,
                    )
                },
            ]
        };
        let step_end = StepEnd { counters: &counters, rec: &rec, kl: &kl, totals: &totals };
        let finish = |u: &wgpu::Buffer| step_end.launch(gpu, kernels, u);
        let sample_params = gpu::uniform_with(
            gpu,
            "sample params",
            &SampleParams {
                rows: rows as u32,
                samples: samples as u32,
                latent: latent as u32,
                baseline: obj.baseline.code(),
                beta: obj.beta,
                warmup_steps: obj.warmup_steps,
                decay: BASELINE_DECAY,
                pad: 0,
            },
        );
        // A shaders/samples.wgsl kernel: its uniforms, then (binding, buffer) pairs.
        let samples_kernel = |entry: Entry, binds: &[(u32, &wgpu::Buffer)], invocations: usize| {
            let mut all = vec![bind(shaders::samples::PARAMS, &sample_params)];
            all.extend(binds.iter().map(|&(i, buf)| bind(i, buf)));
            k(entry).launch_over(gpu, &all, invocations)
        };

        let encoder_forward = network::forward_path(gpu, kernels, &params_buf, &model.encoder, b, enc_in, &enc);
        let decoder_forward = network::forward_path(gpu, kernels, &params_buf, &model.decoder, rows, dec_in, &dec);
        let decoder_backward = |with_dz: bool| {
            let mut launches = Vec::new();
            for (i, l) in model.decoder.iter().enumerate().rev() {
                let input = if i == 0 { dec_in } else { &dec[i - 1] };
                let d_input = if i == 0 { with_dz.then_some(d_dec_in) } else { Some(&d_dec[i - 1]) };
                launches.extend(backward(l, rows, input, &d_dec[i], d_input));
            }
            if with_dz && cond {
                //                                             dz = the z columns of d[z | onehot]
                launches.push(copy_columns(rows, (&dzc, latent + cb, 0), (&dz, latent, 0), latent));
            }
            launches
        };
        let rec_backward = k(rec_backward_name).launch_over(
            //                      dlogits = coef d(rec)/d(logits)
            gpu,
            &[
                bind(shaders::loss::PARAMS, &train_loss),
                bind(shaders::loss::LOGITS, &logits),
                bind(shaders::loss::X, &x),
                bind(shaders::loss::DLOGITS, &d_dec[model.decoder.len() - 1]),
                bind(shaders::loss::COEF, &coef),
            ],
            rows * input,
        );
        let log_weight = samples_kernel(
            Entry::LogWeightForward, // log w = log p(x|z) + log p(z) - log q(z|x)
            &[
                (shaders::samples::COUNTERS, &counters),
                (shaders::samples::MULV, &mulv_s),
                (shaders::samples::EPS, &eps),
                (shaders::samples::Z, &z),
                (shaders::samples::REC, &rec),
                (shaders::samples::LOG_W, &log_w),
            ],
            rows,
        );

        // Per-datapoint inference: the batch's rows of the table stand in for the encoder's output,
        // and Adam updates them where the encoder would get its gradient.
        let table_launch = |entry: Entry, update_index: usize| {
            let (table, (inner, lr)) = (table.as_ref().expect("a table"), obj.per_datapoint.expect("per-datapoint"));
            let u = gpu::uniform_with(
                gpu,
                "table params",
                &TableParams {
                    batch: b as u32,
                    width: enc_out as u32,
                    pass_rows: (steps_per_epoch * b) as u32,
                    updates_per_step: (inner + 1) as u32,
                    update_index: update_index as u32,
                    lr,
                    beta1: settings.adam.beta1,
                    beta2: settings.adam.beta2,
                    eps: settings.adam.eps,
                    pad: [0; 3],
                },
            );
            use shaders::table::{COUNTERS, DMULV, M, MULV, ORDER, PARAMS, TABLE, V};
            let mut binds = vec![
                bind(PARAMS, &u),
                bind(COUNTERS, &counters),
                bind(ORDER, &train_split.order),
                bind(TABLE, &table[0]),
            ];
            if entry == Entry::GatherTableRows {
                binds.push(bind(MULV, &mulv));
            } else {
                binds.extend([bind(DMULV, &d_mulv), bind(M, &table[1]), bind(V, &table[2])]);
            }
            k(entry).launch_over(gpu, &binds, b * enc_out)
        };

        // The training step, in order. Gradients are of the batch's summed loss, as pytorch/examples.
        let mut train_step = vec![gather(&train_split, steps_per_epoch * b)]; // x = batch of images
        train_step.extend(condition_inputs(&train_split, steps_per_epoch * b)); // CVAE: y, [x | y], p(z|y)
        if let Some((inner, _)) = obj.per_datapoint {
            // Inner steps: the batch's (mu, logvar) alone, decoder fixed, each with fresh eps.
            for i in 0..inner {
                let u = gpu::uniform_with(
                    gpu,
                    "inner latent params",
                    &LatentParams {
                        batch: rows as u32,
                        latent: latent as u32,
                        seed: settings.seed,
                        stream: STREAM_INNER_EPS + i as u32,
                        beta: obj.beta,
                        warmup_steps: obj.warmup_steps,
                        free_bits: 0.0,
                        sample_scale: 1.0,
                    },
                );
                train_step.push(table_launch(Entry::GatherTableRows, 0)); //      mulv = table rows
                train_step.push(k(Entry::ReparamForward).launch_over(
                    gpu,
                    &[
                        bind(shaders::latent::PARAMS, &u),
                        bind(shaders::latent::COUNTERS, &counters),
                        bind(shaders::latent::MULV, &mulv),
                        bind(shaders::latent::EPS, &eps),
                        bind(shaders::latent::Z, &z),
                    ],
                    (rows * latent).div_ceil(4),
                ));
                train_step.extend(decoder_forward.iter().cloned());
                train_step.push(rec_backward.clone());
                train_step.extend(decoder_backward(true)); //                   (the decoder's gradients are overwritten below)
                train_step.push(k(Entry::ReparamBackward).launch_over(
                    gpu,
                    &[
                        bind(shaders::latent::PARAMS, &u),
                        bind(shaders::latent::MULV, &mulv),
                        bind(shaders::latent::EPS, &eps),
                        bind(shaders::latent::DZ, &dz),
                        bind(shaders::latent::DMULV, &d_mulv),
                    ],
                    rows * latent,
                ));
                train_step.push(k(Entry::GaussianKlBackward).launch_over(
                    gpu,
                    &[
                        bind(shaders::latent::PARAMS, &u),
                        bind(shaders::latent::COUNTERS, &counters),
                        bind(shaders::latent::MULV, &mulv),
                        bind(shaders::latent::DMULV, &d_mulv),
                    ],
                    rows * latent,
                ));
                train_step.push(table_launch(Entry::TableAdamStep, i));
            }
            train_step.push(table_launch(Entry::GatherTableRows, 0)); //          then the step itself
        } else {
            train_step.extend(encoder_forward.iter().cloned()); //              mulv = encoder(x)
        }
        train_step.extend(repeat_mulv.clone()); //                              one row per sample
        train_step.push(sample_latent(true)); //                                z = mu + sigma eps (or Gumbel-softmax)
        train_step.extend(condition_z(&y, samples)); //                         CVAE: [z | y]
        train_step.extend(decoder_forward.iter().cloned()); //                  logits = decoder(z)
        train_step.extend(losses(&train_loss)); //                              rec, kl per row
        match (obj.objective, obj.estimator) {
            (Objective::Elbo, Estimator::Reparam) if model.arch.categorical.is_some() => {
                train_step.push(rec_backward.clone()); //                       dlogits
                train_step.extend(decoder_backward(true)); //                   -> dz
                train_step.push(k(Entry::GumbelSoftmaxBackward).launch_over(
                    //         d logits of q through the softmax
                    gpu,
                    &[
                        bind(shaders::categorical::PARAMS, &train_categorical),
                        bind(shaders::categorical::COUNTERS, &counters),
                        bind(shaders::categorical::Z, &z),
                        bind(shaders::categorical::DZ, &dz),
                        bind(shaders::categorical::DLOGITS, &d_mulv_s),
                    ],
                    rows * groups,
                ));
                train_step.push(k(Entry::CategoricalKlBackward).launch_over(
                    //         += weighted dKL(q || uniform)
                    gpu,
                    &[
                        bind(shaders::categorical::PARAMS, &train_categorical),
                        bind(shaders::categorical::COUNTERS, &counters),
                        bind(shaders::categorical::LOGITS, &mulv_s),
                        bind(shaders::categorical::DLOGITS, &d_mulv_s),
                    ],
                    rows * groups,
                ));
            }
            (Objective::Elbo, Estimator::Reparam) => {
                train_step.push(rec_backward.clone()); //                       dlogits
                train_step.extend(decoder_backward(true)); //                   -> dz
                train_step.push(k(Entry::ReparamBackward).launch_over(
                    //                dmulv = dz through the sample
                    gpu,
                    &[
                        bind(shaders::latent::PARAMS, &train_latent),
                        bind(shaders::latent::MULV, &mulv_s),
                        bind(shaders::latent::EPS, &eps),
                        bind(shaders::latent::DZ, &dz),
                        bind(shaders::latent::DMULV, &d_mulv_s),
                    ],
                    rows * latent,
                ));
                if cond {
                    //                                                   dmulv += dKL(q || p(z|y)); dprior
                    train_step.push(k(Entry::GaussianKl2Backward).launch_over(
                        gpu,
                        &[
                            bind(shaders::latent::PARAMS, &train_latent),
                            bind(shaders::latent::COUNTERS, &counters),
                            bind(shaders::latent::MULV, &mulv_s),
                            bind(shaders::latent::DMULV, &d_mulv_s),
                            bind(shaders::latent::PRIOR, &mulv_p_s),
                            bind(shaders::latent::DPRIOR, &dprior_s),
                        ],
                        rows * latent,
                    ));
                } else {
                    //                                                    dmulv += weighted dKL
                    train_step.push(k(Entry::GaussianKlBackward).launch_over(
                        gpu,
                        &[
                            bind(shaders::latent::PARAMS, &train_latent),
                            bind(shaders::latent::COUNTERS, &counters),
                            bind(shaders::latent::MULV, &mulv_s),
                            bind(shaders::latent::DMULV, &d_mulv_s),
                        ],
                        rows * latent,
                    ));
                }
            }
            (Objective::Iwae, _) => {
                train_step.push(log_weight.clone()); //                         log w per sample
                train_step.push(samples_kernel(
                    Entry::IwaeWeights,
                    &[(shaders::samples::LOG_W, &log_w), (shaders::samples::COEF, &coef)],
                    b,
                )); // coef = softmax(log w)
                train_step.push(rec_backward.clone()); //                       dlogits = coef (sigmoid - x)
                train_step.extend(decoder_backward(true)); //                   -> dz
                train_step.push(samples_kernel(
                    Entry::SampledLatentBackward, //    dmulv through z, log p(z), log q
                    &[
                        (shaders::samples::MULV, &mulv_s),
                        (shaders::samples::EPS, &eps),
                        (shaders::samples::Z, &z),
                        (shaders::samples::COEF, &coef),
                        (shaders::samples::DZ, &dz),
                        (shaders::samples::DMULV, &d_mulv_s),
                    ],
                    rows * latent,
                ));
            }
            (Objective::Elbo, Estimator::Score) => {
                train_step.push(log_weight.clone()); //                         learning signal f = log w
                train_step.push(rec_backward.clone()); //                       decoder: pathwise, dlogits / samples
                train_step.extend(decoder_backward(false));
                train_step.push(samples_kernel(
                    Entry::ScoreBackward, //             dmulv = -(f - b) grad log q / samples
                    &[
                        (shaders::samples::MULV, &mulv_s),
                        (shaders::samples::EPS, &eps),
                        (shaders::samples::LOG_W, &log_w),
                        (shaders::samples::DMULV, &d_mulv_s),
                        (shaders::samples::BASELINE, &baseline),
                    ],
                    rows * latent,
                ));
                if obj.baseline == Baseline::Mean {
                    train_step.push(samples_kernel(
                        Entry::ScoreBaselineUpdate,
                        &[(shaders::samples::LOG_W, &log_w), (shaders::samples::BASELINE, &baseline)],
                        1,
                    ));
                }
            }
        }
        if samples > 1 {
            //                                                    sum the samples' dmulv per input
            train_step.push(k(Entry::SumRowGroups).launch_over(
                gpu,
                &[
                    bind(shaders::rows::PARAMS, &row_params),
                    bind(shaders::rows::SRC, &d_mulv_s),
                    bind(shaders::rows::DST, &d_mulv),
                ],
                b * enc_out,
            ));
            if cond {
                train_step.push(k(Entry::SumRowGroups).launch_over(
                    gpu,
                    &[
                        bind(shaders::rows::PARAMS, &row_params),
                        bind(shaders::rows::SRC, &dprior_s),
                        bind(shaders::rows::DST, &dprior),
                    ],
                    b * 2 * latent,
                ));
            }
        }
        if let Some(prior) = &model.prior {
            //                                 CVAE: the prior layer's gradients
            train_step.extend(backward(prior, b, &yc, &dprior, None));
        }
        if let Some((inner, _)) = obj.per_datapoint {
            //                       the table takes the encoder's gradient
            train_step.push(table_launch(Entry::TableAdamStep, inner));
        } else {
            for (i, l) in model.encoder.iter().enumerate().rev() {
                //          encoder backward
                let input = if i == 0 { enc_in } else { &enc[i - 1] };
                let d_input = if i == 0 { None } else { Some(&d_enc[i - 1]) };
                train_step.extend(backward(l, b, input, &d_enc[i], d_input));
            }
        }
        let adam = AdamParams {
            count: model.param_count as u32,
            lr: settings.adam.lr,
            beta1: settings.adam.beta1,
            beta2: settings.adam.beta2,
            eps: settings.adam.eps,
            pad: [0; 3],
        };
        let adam_u = gpu::uniform_with(gpu, "adam params", &adam);
        let gradient_len = train_step.len(); //                                 everything before is the gradient
        train_step.push(k(Entry::AdamStep).launch_over(
            //                              params -= Adam(grads)
            gpu,
            &[
                bind(shaders::adam::PARAMS, &adam_u),
                bind(shaders::adam::COUNTERS, &counters),
                bind(shaders::adam::GRADS, &grads),
                bind(shaders::adam::WEIGHTS, &params_buf),
                bind(shaders::adam::M, &adam_m),
                bind(shaders::adam::V, &adam_v),
            ],
            model.param_count,
        ));
        train_step.push(finish(&train_loss)); //                               totals += losses; step += 1

        // Encoding validation images: their posterior means and log-variances in mulv.
        let mut encode = vec![gather(&val_split, val.len())];
        encode.extend(condition_inputs(&val_split, val.len()));
        encode.extend(encoder_forward.iter().cloned());

        // Evaluation: the same forward with its own random stream, no backward.
        let mut eval_step = encode.clone();
        eval_step.extend(repeat_mulv);
        eval_step.push(sample_latent(false));
        eval_step.extend(condition_z(&y, samples));
        eval_step.extend(decoder_forward.iter().cloned());
        eval_step.extend(losses(&eval_loss));
        eval_step.push(finish(&eval_loss));

        // Decoding given latents (and, for a CVAE, classes in decode_labels).
        let mut decode = condition_z(&decode_labels, 1);
        decode.extend(decoder_forward);

        GpuTrainer {
            model,
            settings,
            steps_per_epoch,
            params: params_buf,
            grads,
            adam_m,
            adam_v,
            counters,
            totals,
            baseline,
            train: train_split,
            val: val_split,
            x,
            z,
            logits,
            mulv,
            decode_labels,
            table,
            train_step,
            gradient_len,
            encode,
            eval_step,
            decode,
        }
    }
}
