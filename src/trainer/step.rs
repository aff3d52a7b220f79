//! GpuTrainer::new: the buffers, then each launch list (the training step, encode, evaluation,
//! decode) recorded once as an ordered list of launches.
mod per_datapoint;

use super::buffers::{Buffers, GpuSplit};
use super::latent::LatentHead;
use super::GpuTrainer;
use crate::config::TrainSettings;
use crate::data::Split;
use crate::gpu::params::SampleParams;
use crate::gpu::{Gpu, Kernels, Launch, Launcher};
use crate::launches::{adam_step, condition, loss_params, rows, Gather, Reconstruction, SampleRows, StepEnd};
use crate::model::Model;
use crate::network::linear::tiled::{self as linear_tiled, GatheredInput};
use crate::network::{self, LayerKind};
use crate::objective::{Baseline, Gradient, BASELINE_DECAY};

/// What every launch list of one trainer shares.
struct Parts<'a> {
    l: Launcher<'a>,
    model: &'a Model,
    s: &'a TrainSettings,
    b: &'a Buffers,
    head: LatentHead,
    rows: usize, // R = batch x samples
}

impl Parts<'_> {
    /// The batch at the cursor of `split`'s order, as gathered into x.
    fn batch_of<'a>(&'a self, split: &'a GpuSplit, pass_rows: usize) -> Gather<'a> {
        let (images, order, counters, x) = (&split.images, &split.order, &self.b.counters, &self.b.x);
        let (rows, pixels, binarize, seed) = (self.s.batch, self.model.arch.input(), self.s.binarize, self.s.seed);
        Gather { images, order, counters, x, rows, pixels, pass_rows, binarize, seed }
    }

    /// Where the encoder's first layer gathers the batch itself (linear_forward_gather_tiled):
    /// GPU kernels, an MLP's encoder without a class block or a per-datapoint table, the split's
    /// images in one shard, and that layer's forward product on the tiled kernel.
    fn encoder_gathers<'a>(&self, batch: &'a Gather) -> Option<GatheredInput<'a>> {
        let first = &self.model.encoder[0];
        let fused = self.b.cond.is_none()
            && self.s.objective.per_datapoint.is_none()
            && first.kind == LayerKind::Linear
            && self.l.plan().first_layer_gathers((first.n_in, first.n_out), batch.rows);
        batch.in_one_shard().filter(|_| fused)
    }

    /// x = the batch (a launch per shard of the split's images), unless the encoder gathers it.
    fn gather(&self, batch: &Gather) -> Vec<Launch> {
        match self.encoder_gathers(batch) {
            Some(_) => Vec::new(),
            None => batch.launches(self.l),
        }
    }

    /// mulv = encoder(x). A CVAE's layer j = encoder_class_layer() takes [h | onehot(y)], h its
    /// input (x for the MLP, the last convolution's map for the conv VAE).
    fn encoder_forward(&self, batch: &Gather) -> Vec<Launch> {
        let (l, b, enc, rows) = (self.l, self.b, &self.model.encoder, self.s.batch);
        if let Some(input) = self.encoder_gathers(batch) {
            let mut launches = linear_tiled::forward_gathered(l, &enc[0], &b.params, &input, &b.enc[0]);
            launches.extend(network::forward_path(l, &b.params, &enc[1..], rows, &b.enc[0], &b.enc[1..]));
            return launches;
        }
        let Some(c) = &b.cond else { return network::forward_path(l, &b.params, enc, rows, &b.x, &b.enc) };
        let (j, cb) = (self.model.encoder_class_layer(), self.model.arch.class_block());
        let width = enc[j].n_in - cb;
        let mut launches = network::forward_path(l, &b.params, &enc[..j], rows, &b.x, &b.enc[..j]);
        let h = if j == 0 { &b.x } else { &b.enc[j - 1] };
        launches.push(condition::copy_columns(l, rows, (h, width, 0), (&c.xc, width + cb, 0), width));
        launches.push(condition::one_hot_columns(l, rows, &c.y, 1, cb, (&c.xc, width + cb, width)));
        launches.extend(network::forward_path(l, &b.params, &enc[j..], rows, &c.xc, &b.enc[j..]));
        launches
    }

    fn decoder_forward(&self) -> Vec<Launch> {
        let (input, _) = self.b.decoder_inputs();
        network::forward_path(self.l, &self.b.params, &self.model.decoder, self.rows, input, &self.b.dec)
    }

    /// The decoder's gradients, and dz when `with_dz` (a CVAE's: the z columns of d[z | onehot]).
    fn decoder_backward(&self, with_dz: bool) -> Vec<Launch> {
        let (b, (input, d_input)) = (self.b, self.b.decoder_inputs());
        let acts = (input, b.dec.as_slice(), b.d_dec.as_slice());
        let mut launches = network::backward_path(
            self.l,
            (&b.params, &b.grads),
            &self.model.decoder,
            self.rows,
            acts,
            with_dz.then_some(d_input),
        );
        if let (true, Some(c)) = (with_dz, &b.cond) {
            let (z, cb) = (self.model.arch.latent, self.model.arch.class_block());
            launches.push(condition::copy_columns(self.l, self.rows, (&c.dzc, z + cb, 0), (&b.dz, z, 0), z));
        }
        launches
    }

    fn reconstruction(&self) -> Reconstruction<'_> {
        let (decoder, logits, x, rec) = (self.model.arch.decoder, self.b.logits(), &self.b.x, &self.b.rec);
        Reconstruction { decoder, logits, x, rec, rows: self.rows, pixels: self.model.arch.input() }
    }

    /// Whether the training step's rec_forward writes dlogits too: where the plan says so, for an
    /// ELBO (its coef is fixed; IWAE's comes from rec).
    fn rec_fused(&self) -> bool {
        self.l.plan().rec_writes_gradient(self.s.objective.gradient != Gradient::Iwae)
    }

    /// rec per row, and dlogits with it where rec_fused.
    fn rec_forward(&self, loss_params: &wgpu::Buffer) -> Launch {
        if !self.rec_fused() {
            return self.reconstruction().forward(self.l, loss_params);
        }
        let d_logits = self.b.d_dec.last().expect("a decoder layer");
        self.reconstruction().forward_backward(self.l, loss_params, d_logits, &self.b.coef)
    }

    /// dlogits = coef d(rec)/d(logits).
    fn rec_backward(&self, loss_params: &wgpu::Buffer) -> Launch {
        let d_logits = self.b.d_dec.last().expect("a decoder layer");
        self.reconstruction().backward(self.l, loss_params, d_logits, &self.b.coef)
    }

    /// The ELBO's dlogits, unless rec_forward wrote them.
    fn elbo_rec_backward(&self, loss_params: &wgpu::Buffer) -> Option<Launch> {
        (!self.rec_fused()).then(|| self.rec_backward(loss_params))
    }

    fn step_end(&self, loss_params: &wgpu::Buffer) -> Launch {
        let b = self.b;
        StepEnd { counters: &b.counters, rec: &b.rec, kl: &b.kl, totals: &b.totals }.launch(self.l, loss_params)
    }

    fn samples<'a>(&'a self, params: &'a wgpu::Buffer) -> SampleRows<'a> {
        let b = self.b;
        SampleRows {
            rows: self.rows,
            latent: self.model.arch.latent,
            params,
            counters: &b.counters,
            mulv: &b.mulv_s,
            d_mulv: &b.d_mulv_s,
            eps: &b.eps,
            z: &b.z,
            dz: &b.dz,
            rec: &b.rec,
            log_w: &b.log_w,
            coef: &b.coef,
            baseline: &b.baseline,
        }
    }

    /// The gradient in q's parameters per sample (d_mulv_s), and the decoder's, by objective and
    /// estimator; rec and kl per row are already there.
    fn latent_gradient(&self, train_loss: &wgpu::Buffer) -> Vec<Launch> {
        let (l, s) = (self.l, &self.s.objective);
        let sample_params = l.uniform(
            "sample params",
            &SampleParams {
                rows: self.rows as u32,
                samples: s.samples as u32,
                latent: self.model.arch.latent as u32,
                baseline: s.baseline().code(),
                beta: s.beta,
                warmup_steps: s.warmup_steps,
                decay: BASELINE_DECAY,
                pad: 0,
            },
        );
        let q = self.samples(&sample_params);
        let mut launches = Vec::new();
        match s.gradient {
            Gradient::Reparam { .. } => {
                launches.extend(self.elbo_rec_backward(train_loss)); // dlogits
                launches.extend(self.decoder_backward(true)); // -> dz
                launches.extend(self.head.backward(l, self.b)); // dmulv through the sample, + dKL
            }
            Gradient::Iwae => {
                launches.push(q.log_weight(l)); // log w per sample
                launches.push(q.iwae_weights(l, self.s.batch)); // coef = softmax(log w)
                launches.push(self.rec_backward(train_loss)); // dlogits = coef d(rec)/d(logits)
                launches.extend(self.decoder_backward(true)); // -> dz
                launches.push(q.sampled_latent_backward(l)); // dmulv through z, log p(z), log q
            }
            Gradient::Score { baseline } => {
                launches.push(q.log_weight(l)); // the learning signal f = log w
                launches.extend(self.elbo_rec_backward(train_loss)); // the decoder's stays pathwise
                launches.extend(self.decoder_backward(false));
                launches.push(q.score_backward(l)); // dmulv = -(f - b) grad log q / samples
                if baseline == Baseline::Mean {
                    launches.push(q.score_baseline_update(l));
                }
            }
        }
        launches
    }
}

impl Parts<'_> {
    /// q's parameters per input: the encoder's output, or (per-datapoint inference) the table's
    /// rows after the inner steps.
    fn q_forward(&self, split: &GpuSplit, batch: &Gather, train_loss: &wgpu::Buffer) -> Vec<Launch> {
        let Some((inner, _)) = self.s.objective.per_datapoint else { return self.encoder_forward(batch) };
        let mut launches: Vec<Launch> = (0..inner).flat_map(|i| self.inner_step(split, i, train_loss)).collect();
        launches.push(self.table(split, None));
        launches
    }

    /// The gradient in q's parameters (and a CVAE's prior) summed over each input's samples.
    fn sum_samples(&self, row_params: &wgpu::Buffer) -> Vec<Launch> {
        let (b, n) = (self.b, self.s.batch * self.model.arch.encoder_outputs());
        let mut launches = vec![rows::sum_row_groups(self.l, row_params, &b.d_mulv_s, b.d_mulv(), n)];
        if let Some(c) = &b.cond {
            // A CVAE's latent is Gaussian: the prior's rows are as wide as the encoder's, 2 latent.
            launches.push(rows::sum_row_groups(self.l, row_params, &c.d_prior_s, &c.d_prior, n));
        }
        launches
    }

    fn prior_backward(&self) -> Vec<Launch> {
        let (b, batch) = (self.b, self.s.batch);
        match (&self.model.prior, &b.cond) {
            (Some(prior), Some(c)) => {
                prior.backward(self.l, (&b.params, Some(&b.grads)), batch, (&c.yc, &c.d_prior), None)
            }
            _ => Vec::new(),
        }
    }

    /// The encoder's gradients from q's, or per-datapoint inference's Adam step on the table.
    fn q_backward(&self, split: &GpuSplit) -> Vec<Launch> {
        if let Some((inner, _)) = self.s.objective.per_datapoint {
            return vec![self.table(split, Some(inner))];
        }
        let (l, b, enc, batch) = (self.l, self.b, &self.model.encoder, self.s.batch);
        let weights = (&b.params, &b.grads);
        let Some(c) = &b.cond else {
            return network::backward_path(l, weights, enc, batch, (&b.x, &b.enc, &b.d_enc), None);
        };
        // The layers above the class block, then (the conv VAE) d h out of d [h | onehot] and the
        // layers below.
        let (j, cb) = (self.model.encoder_class_layer(), self.model.arch.class_block());
        let upper = (&c.xc, &b.enc[j..], &b.d_enc[j..]);
        let mut launches = network::backward_path(l, weights, &enc[j..], batch, upper, c.d_xc.as_ref());
        if let Some(d_xc) = &c.d_xc {
            let width = enc[j].n_in - cb;
            launches.push(condition::copy_columns(l, batch, (d_xc, width + cb, 0), (&b.d_enc[j - 1], width, 0), width));
            launches.extend(network::backward_path(
                l,
                weights,
                &enc[..j],
                batch,
                (&b.x, &b.enc[..j], &b.d_enc[..j]),
                None,
            ));
        }
        launches
    }

    fn adam(&self) -> Launch {
        let b = self.b;
        let (grads, moments) = ((&b.grads, &b.params), (&b.adam_m, &b.adam_v));
        adam_step(self.l, &self.s.adam, &b.counters, grads, moments, self.model.param_count)
    }
    /// The training step, in order. Gradients are of the batch's summed loss, as pytorch/examples.
    /// Returns the launches and how many of the first compute the gradient.
    fn train_step(
        &self,
        split: &GpuSplit,
        rows: usize,
        (loss, row_params): (&wgpu::Buffer, &wgpu::Buffer),
        repeat_mulv: &Option<Launch>,
    ) -> (Vec<Launch>, usize) {
        let (l, b, samples) = (self.l, self.b, self.s.objective.samples);
        let batch = self.batch_of(split, rows);
        let mut step = self.gather(&batch); // x = the batch (or in the encoder)
        step.extend(self.head.condition_inputs(l, self.model, b, split, rows)); // CVAE: y, [x|y], p(z|y)
        step.extend(self.q_forward(split, &batch, loss)); // mulv = encoder(x), or table rows
        step.extend(repeat_mulv.clone()); // one row per sample
        step.push(self.head.sample(l, b, true)); // z ~ q(z|x)
        step.extend(self.head.condition_z(l, b, false, samples)); // CVAE: [z | y]
        step.extend(self.decoder_forward()); // logits = decoder(z)
        step.push(self.rec_forward(loss)); // rec per row (maybe with dlogits)
        step.push(self.head.kl(l, b)); // kl per row
        step.extend(self.latent_gradient(loss)); // decoder grads; dmulv per sample
        if samples > 1 {
            step.extend(self.sum_samples(row_params)); // dmulv (and dprior) per input
        }
        step.extend(self.prior_backward()); // CVAE: p(z|y)'s gradients
        step.extend(self.q_backward(split)); // the encoder's, or the table's step
        let gradient_len = step.len(); // everything before is the gradient
        step.push(self.adam()); // params -= Adam(grads)
        step.push(self.step_end(loss)); // totals += losses; step += 1
        (step, gradient_len)
    }
}

impl GpuSplit {
    /// Rows of the pass's order: every full batch of the training split, as the epoch runs them.
    fn order_rows(&self, batch: usize) -> usize {
        self.rows / batch * batch
    }
}

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
        let l = Launcher { gpu, kernels };
        let (batch, samples) = (settings.batch, settings.objective.samples);
        let steps_per_epoch = train.len() / batch;
        let train_split = GpuSplit::new(gpu, "train", train, train.len());
        let val_split = GpuSplit::new(gpu, "validation", val, val.len().div_ceil(batch) * batch);
        let b = Buffers::new(gpu, &model, &settings, params, train.len());
        let head = LatentHead::new(l, &model, &settings);
        let p = Parts { l, model: &model, s: &settings, b: &b, head, rows: batch * samples };
        let (pixels, enc_out) = (model.arch.input(), model.arch.encoder_outputs());
        let train_rows = steps_per_epoch * batch;
        let train_loss = loss_params(l, p.rows, pixels, train_rows, samples, true, false);
        let eval_loss = loss_params(l, p.rows, pixels, val.len(), samples, false, false);
        let row_params = rows::row_params(l, batch, samples, enc_out);
        let repeat_mulv =
            (samples > 1).then(|| rows::repeat_rows(l, &row_params, b.mulv(), &b.mulv_s, p.rows * enc_out));

        let (step, gradient_len) = p.train_step(&train_split, train_rows, (&train_loss, &row_params), &repeat_mulv);

        // Encoding validation images: q's parameters in mulv.
        let val_batch = p.batch_of(&val_split, val.len());
        let mut encode = p.gather(&val_batch);
        encode.extend(p.head.condition_inputs(l, &model, &b, &val_split, val.len()));
        encode.extend(p.encoder_forward(&val_batch));

        // Evaluation: the same forward on its own random stream, no backward.
        let mut eval_step = encode.clone();
        eval_step.extend(repeat_mulv);
        eval_step.push(p.head.sample(l, &b, false));
        eval_step.extend(p.head.condition_z(l, &b, false, samples));
        eval_step.extend(p.decoder_forward());
        eval_step.push(p.reconstruction().forward(l, &eval_loss));
        eval_step.push(p.head.kl(l, &b));
        eval_step.push(p.step_end(&eval_loss));

        // Decoding given latents (and, for a CVAE, classes in decode_labels).
        let mut decode = p.head.condition_z(l, &b, true, 1);
        decode.extend(p.decoder_forward());

        drop(p);
        GpuTrainer {
            model,
            settings,
            steps_per_epoch,
            bufs: b,
            train: train_split,
            val: val_split,
            train_step: step,
            gradient_len,
            encode,
            eval_step,
            decode,
            ticks: super::ticks::TickSlots::new(gpu),
        }
    }
}
