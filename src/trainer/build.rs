//! GpuTrainer::new: every buffer the model needs and the launch lists (the training step, encode,
//! evaluation, decode), each recorded once. The step is assembled at the end as an ordered list.
use super::{GpuSplit, GpuTrainer};
use crate::config::TrainSettings;
use crate::data::Split;
use crate::gpu::kernels::{bind, bind_range};
use crate::gpu::params::*;
use crate::gpu::{self, Gpu, Kernels, Launch};
use crate::model::{Layer, Model};
use crate::network;
use crate::objective::{Baseline, Estimator, Objective, BASELINE_DECAY};

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

        let k = |name: &str| kernels.get(name);
        let w_of = |l: &Layer| (l.weight_at, l.n_in * l.n_out);
        let b_of = |l: &Layer| (l.bias_at, l.n_out);
        let kernel = |name: &str, l: &Layer| network::linear_kernel(kernels, name, l);
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
                launches.push(kernel("linear_backward_weight", l).launch(
                    gpu,
                    &[bind(0, &u), bind(1, d_output), bind(2, input), bind_range(4, &grads, wa, wn)],
                    linear_groups(l.n_out, l.n_in),
                ));
                launches.push(k("linear_backward_bias").launch(
                    gpu,
                    &[bind(0, &u), bind(1, d_output), bind_range(4, &grads, ba, bn)],
                    groups_of_64(l.n_out),
                ));
                launches
            };

        let gather = |s: &GpuSplit, pass_rows: usize| {
            let p = GatherParams {
                batch: b as u32,
                words: (input / 4) as u32,
                pass_rows: pass_rows as u32,
                binarize: settings.binarize.code(),
                seed: settings.seed,
                stream: STREAM_BINARIZE,
                pad: [0; 2],
            };
            let u = gpu::uniform_with(gpu, "gather params", &p);
            k("gather_batch").launch(
                gpu,
                &[bind(0, &u), bind(1, &counters), bind(2, &s.images), bind(3, &s.order), bind(4, &x)],
                groups_of_64(b * input / 4),
            )
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
            k("gather_labels").launch(
                gpu,
                &[bind(0, &u), bind(1, &counters), bind(3, &s.order), bind(5, &s.labels), bind(6, &y)],
                groups_of_64(b),
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
            k("copy_columns").launch(gpu, &[bind(0, &u), bind(1, src), bind(2, dst)], groups_of_64(n * count))
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
                k("one_hot_columns").launch(gpu, &[bind(0, &u), bind(2, dst), bind(3, labels)], groups_of_64(n * cb))
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
                launches.push(k("repeat_rows").launch(
                    gpu,
                    &[bind(0, &u), bind(1, &mulv_p), bind(2, &mulv_p_s)],
                    groups_of_64(rows * 2 * latent),
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
            k("repeat_rows").launch(
                gpu,
                &[bind(0, &row_params), bind(1, &mulv), bind(2, &mulv_s)],
                groups_of_64(rows * enc_out),
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
                k("gumbel_softmax_forward").launch(
                    gpu,
                    &[bind(0, u), bind(1, &counters), bind(2, &mulv_s), bind(3, &eps), bind(4, &z)],
                    groups_of_64(rows * groups),
                )
            } else {
                let u = if training { &train_latent } else { &eval_latent };
                k("reparam_forward").launch(
                    gpu,
                    &[bind(0, u), bind(1, &counters), bind(2, &mulv_s), bind(3, &eps), bind(4, &z)],
                    groups_of_64((rows * latent).div_ceil(4)),
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
                k(rec_forward_name).launch(
                    gpu,
                    &[bind(0, u), bind(2, &logits), bind(3, &x), bind(4, &rec)],
                    groups_of_64(rows),
                ),
                if cond {
                    k("gaussian_kl2_forward").launch(
                        gpu,
                        &[bind(0, &train_latent), bind(2, &mulv_s), bind(7, &kl), bind(8, &mulv_p_s)],
                        groups_of_64(rows),
                    )
                } else if model.arch.categorical.is_some() {
                    k("categorical_kl_forward").launch(
                        gpu,
                        &[bind(0, &train_categorical), bind(2, &mulv_s), bind(7, &kl)],
                        groups_of_64(rows),
                    )
                } else {
                    k("gaussian_kl_forward").launch(
                        gpu,
                        &[bind(0, &train_latent), bind(2, &mulv_s), bind(7, &kl)],
                        groups_of_64(rows),
                    )
                },
            ]
        };
        let finish = |u: &wgpu::Buffer| {
            k("finish_step").launch(
                gpu,
                &[bind(0, u), bind(1, &counters), bind(4, &rec), bind(6, &kl), bind(7, &totals)],
                [1, 1, 1],
            )
        };
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
        let samples_kernel = |name: &str, binds: &[(u32, &wgpu::Buffer)], invocations: usize| {
            let mut all = vec![bind(0, &sample_params)];
            all.extend(binds.iter().map(|&(i, buf)| bind(i, buf)));
            k(name).launch(gpu, &all, groups_of_64(invocations))
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
        let rec_backward = k(rec_backward_name).launch(
            //                      dlogits = coef d(rec)/d(logits)
            gpu,
            &[
                bind(0, &train_loss),
                bind(2, &logits),
                bind(3, &x),
                bind(5, &d_dec[model.decoder.len() - 1]),
                bind(8, &coef),
            ],
            groups_of_64(rows * input),
        );
        let log_weight = samples_kernel(
            "log_weight_forward", // log w = log p(x|z) + log p(z) - log q(z|x)
            &[(1, &counters), (2, &mulv_s), (3, &eps), (4, &z), (5, &rec), (6, &log_w)],
            rows,
        );

        // Per-datapoint inference: the batch's rows of the table stand in for the encoder's output,
        // and Adam updates them where the encoder would get its gradient.
        let table_launch = |name: &str, update_index: usize| {
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
            let mut binds = vec![bind(0, &u), bind(1, &counters), bind(2, &train_split.order), bind(3, &table[0])];
            if name == "gather_table_rows" {
                binds.push(bind(5, &mulv));
            } else {
                binds.extend([bind(4, &d_mulv), bind(6, &table[1]), bind(7, &table[2])]);
            }
            k(name).launch(gpu, &binds, groups_of_64(b * enc_out))
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
                train_step.push(table_launch("gather_table_rows", 0)); //      mulv = table rows
                train_step.push(k("reparam_forward").launch(
                    gpu,
                    &[bind(0, &u), bind(1, &counters), bind(2, &mulv), bind(3, &eps), bind(4, &z)],
                    groups_of_64((rows * latent).div_ceil(4)),
                ));
                train_step.extend(decoder_forward.iter().cloned());
                train_step.push(rec_backward.clone());
                train_step.extend(decoder_backward(true)); //                   (the decoder's gradients are overwritten below)
                train_step.push(k("reparam_backward").launch(
                    gpu,
                    &[bind(0, &u), bind(2, &mulv), bind(3, &eps), bind(5, &dz), bind(6, &d_mulv)],
                    groups_of_64(rows * latent),
                ));
                train_step.push(k("gaussian_kl_backward").launch(
                    gpu,
                    &[bind(0, &u), bind(1, &counters), bind(2, &mulv), bind(6, &d_mulv)],
                    groups_of_64(rows * latent),
                ));
                train_step.push(table_launch("table_adam_step", i));
            }
            train_step.push(table_launch("gather_table_rows", 0)); //          then the step itself
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
                train_step.push(k("gumbel_softmax_backward").launch(
                    //         d logits of q through the softmax
                    gpu,
                    &[bind(0, &train_categorical), bind(1, &counters), bind(4, &z), bind(5, &dz), bind(6, &d_mulv_s)],
                    groups_of_64(rows * groups),
                ));
                train_step.push(k("categorical_kl_backward").launch(
                    //         += weighted dKL(q || uniform)
                    gpu,
                    &[bind(0, &train_categorical), bind(1, &counters), bind(2, &mulv_s), bind(6, &d_mulv_s)],
                    groups_of_64(rows * groups),
                ));
            }
            (Objective::Elbo, Estimator::Reparam) => {
                train_step.push(rec_backward.clone()); //                       dlogits
                train_step.extend(decoder_backward(true)); //                   -> dz
                train_step.push(k("reparam_backward").launch(
                    //                dmulv = dz through the sample
                    gpu,
                    &[bind(0, &train_latent), bind(2, &mulv_s), bind(3, &eps), bind(5, &dz), bind(6, &d_mulv_s)],
                    groups_of_64(rows * latent),
                ));
                if cond {
                    //                                                   dmulv += dKL(q || p(z|y)); dprior
                    train_step.push(k("gaussian_kl2_backward").launch(
                        gpu,
                        &[
                            bind(0, &train_latent),
                            bind(1, &counters),
                            bind(2, &mulv_s),
                            bind(6, &d_mulv_s),
                            bind(8, &mulv_p_s),
                            bind(9, &dprior_s),
                        ],
                        groups_of_64(rows * latent),
                    ));
                } else {
                    //                                                    dmulv += weighted dKL
                    train_step.push(k("gaussian_kl_backward").launch(
                        gpu,
                        &[bind(0, &train_latent), bind(1, &counters), bind(2, &mulv_s), bind(6, &d_mulv_s)],
                        groups_of_64(rows * latent),
                    ));
                }
            }
            (Objective::Iwae, _) => {
                train_step.push(log_weight.clone()); //                         log w per sample
                train_step.push(samples_kernel("iwae_weights", &[(6, &log_w), (7, &coef)], b)); // coef = softmax(log w)
                train_step.push(rec_backward.clone()); //                       dlogits = coef (sigmoid - x)
                train_step.extend(decoder_backward(true)); //                   -> dz
                train_step.push(samples_kernel(
                    "sampled_latent_backward", //    dmulv through z, log p(z), log q
                    &[(2, &mulv_s), (3, &eps), (4, &z), (7, &coef), (8, &dz), (9, &d_mulv_s)],
                    rows * latent,
                ));
            }
            (Objective::Elbo, Estimator::Score) => {
                train_step.push(log_weight.clone()); //                         learning signal f = log w
                train_step.push(rec_backward.clone()); //                       decoder: pathwise, dlogits / samples
                train_step.extend(decoder_backward(false));
                train_step.push(samples_kernel(
                    "score_backward", //             dmulv = -(f - b) grad log q / samples
                    &[(2, &mulv_s), (3, &eps), (6, &log_w), (9, &d_mulv_s), (10, &baseline)],
                    rows * latent,
                ));
                if obj.baseline == Baseline::Mean {
                    train_step.push(samples_kernel("score_baseline_update", &[(6, &log_w), (10, &baseline)], 1));
                }
            }
        }
        if samples > 1 {
            //                                                    sum the samples' dmulv per input
            train_step.push(k("sum_row_groups").launch(
                gpu,
                &[bind(0, &row_params), bind(1, &d_mulv_s), bind(2, &d_mulv)],
                groups_of_64(b * enc_out),
            ));
            if cond {
                train_step.push(k("sum_row_groups").launch(
                    gpu,
                    &[bind(0, &row_params), bind(1, &dprior_s), bind(2, &dprior)],
                    groups_of_64(b * 2 * latent),
                ));
            }
        }
        if let Some(prior) = &model.prior {
            //                                 CVAE: the prior layer's gradients
            train_step.extend(backward(prior, b, &yc, &dprior, None));
        }
        if let Some((inner, _)) = obj.per_datapoint {
            //                       the table takes the encoder's gradient
            train_step.push(table_launch("table_adam_step", inner));
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
        train_step.push(k("adam_step").launch(
            //                              params -= Adam(grads)
            gpu,
            &[
                bind(0, &adam_u),
                bind(1, &counters),
                bind(2, &grads),
                bind(3, &params_buf),
                bind(4, &adam_m),
                bind(5, &adam_v),
            ],
            groups_of_64(model.param_count),
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
