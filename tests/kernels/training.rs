//! A few GPU training steps against the reference trainer (src/reference/trainer.rs), in every
//! mode: losses after each step, every step's gradient, and the weights after four steps.
use crate::common::*;

use wgvae::model::Architecture;
use wgvae::objective::{Baseline, Gradient};

/// One model and objective to train on both sides. Widths pick the kernel variants: hidden 45 or
/// latent 6 keep layers on the scalar kernels, hidden 44 with latent 8 puts every layer on vec4.
#[derive(Clone)]
pub struct Case {
    arch: Architecture,
    objective: ObjectiveSettings,
    /// The kernel family to train with; None: the adapter's.
    family: Option<KernelFamily>,
    /// Whether kernels that use subgroups may be picked (where the adapter has them).
    subgroups: bool,
}

impl Case {
    pub fn new(hidden: usize, latent: usize) -> Case {
        let arch = Architecture::mlp(wgvae::data::ImageShape::mnist(), vec![hidden], latent);
        Case { arch, objective: ObjectiveSettings::default(), family: None, subgroups: true }
    }

    fn scalar() -> Case {
        Case::new(45, 6)
    }

    fn vec4() -> Case {
        Case::new(44, 8)
    }

    fn objective(self, objective: ObjectiveSettings) -> Case {
        Case { objective, ..self }
    }

    /// The same case with `edit` made to its architecture.
    pub fn arch(mut self, edit: impl FnOnce(&mut Architecture)) -> Case {
        edit(&mut self.arch);
        self
    }

    pub fn gaussian(self) -> Case {
        self.arch(|a| a.decoder = Decoder::Gaussian)
    }

    fn conditional(self, classes: usize) -> Case {
        self.arch(|a| a.classes = classes)
    }

    /// A conv VAE: 28 x 28 -> 3 x 14 x 14 -> 5 x 7 x 7 (channel counts that are not multiples of 4).
    fn conv(latent: usize) -> Case {
        Case::new(45, latent).arch(|a| a.conv = Some(vec![3, 5]))
    }

    fn kernels(self, family: KernelFamily) -> Case {
        Case { family: Some(family), ..self }
    }

    /// As on an adapter without subgroups: the GPU family's narrow products split on the tiled
    /// kernel, so (at batch 13) the encoder's first layer gathers its own batch.
    fn without_subgroups(self) -> Case {
        Case { subgroups: false, ..self }
    }

    fn categorical(self, groups: usize, categories: usize) -> Case {
        self.arch(|a| (a.latent, a.categorical) = (groups * categories, Some((groups, categories))))
    }

    /// Trains four steps of batch 13 on 61 images with both trainers and compares them.
    pub fn check(self) {
        use wgvae::config::TrainSettings;
        use wgvae::model::Model;
        use wgvae::reference::trainer::ReferenceTrainer;
        use wgvae::trainer::GpuTrainer;
        let data = wgvae::data::embedded().expect("embedded data");
        let take = |from: usize, n: usize| wgvae::data::Split {
            images: data.train.images[from * 784..(from + n) * 784].to_vec(),
            labels: data.train.labels[from..from + n].to_vec(),
            pixels: 784,
        };
        let (train, val) = (take(0, 61), take(3000, 9));
        let Case { arch, objective, family, subgroups } = self;
        let decoder = arch.decoder;
        let model = Model::new(arch);
        let settings = TrainSettings {
            batch: 13,
            adam: wgvae::config::AdamConfig { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
            seed: 5,
            binarize: wgvae::data::Binarize::Dynamic,
            objective: objective.clone(),
            tau_start: 2.0,
            tau_end: 0.5,
            anneal_steps: 3,
        };
        let mut params = model.init_params(5);
        if let Some(prior) = &model.prior {
            // A prior that is not N(0, I), so that every term of the two-Gaussian KL is exercised.
            let noise = random(prior.n_in * prior.n_out, 77, 0.3);
            params[prior.weight_at..prior.weight_at + noise.len()].copy_from_slice(&noise);
        }
        let g = &gpu_with(family.unwrap_or(gpu().0.plan().family()), subgroups);
        let k = &gpu().1;
        let gpu_trainer = GpuTrainer::new(g, k, model.clone(), settings.clone(), &params, &train, &val);
        let mut reference = ReferenceTrainer::new(model, settings, params);
        let order = wgvae::draws::epoch_order(train.len(), 5, 1);
        gpu_trainer.start_epoch(g, &order);
        reference.start_pass();
        let pass_rows = (gpu_trainer.steps_per_epoch * 13) as u32;
        // Adam moves a weight by about lr whatever its gradient's size, so a component whose gradient
        // is rounding noise may step either way, and the next step's gradient follows: compared over
        // several steps, the two trainers drift apart by more than any one step's arithmetic. So each
        // step after the first starts the reference from the GPU's state, and every comparison below
        // is one step's arithmetic at the same weights.
        for step in 0..4 {
            if step > 0 {
                take_state(&mut reference, &gpu_trainer, g);
            }
            gpu_trainer.train_steps(g, 1).unwrap();
            reference.train_step(&train.images, &train.labels, &order, pass_rows);
            assert_step_agrees(&gpu_trainer, g, &reference, &format!("{objective:?} {decoder:?}"), step);
        }
        assert_eq!(pollster::block_on(gpu_trainer.counters(g)).unwrap().step, 4);
    }
}

/// After one step from the same state: the running loss totals, the gradient and the weights.
fn assert_step_agrees(
    gpu_trainer: &wgvae::trainer::GpuTrainer,
    g: &Gpu,
    reference: &wgvae::reference::trainer::ReferenceTrainer,
    label: &str,
    step: usize,
) {
    let (got, want) = (pollster::block_on(gpu_trainer.totals(g)).unwrap(), reference.totals);
    // Running totals after each step: every step's rec and kl must agree.
    assert_close(
        &format!("{label}: losses through step {step}"),
        &[got.rec_sum, got.kl_sum, got.examples],
        &[want.rec_sum, want.kl_sum, want.examples],
        DRAWN_REL,
    );
    // The gradient as a vector, its error relative to its norm (DRAWN_REL): exp and log
    // round differently on each driver and the GPU family adds its sums in another order
    // (tiles, slices, a tree per row); a ReLU unit or a free-bits gate whose input that
    // rounding moves across 0 would change a few components by a row's share and the
    // vector little.
    let (gg, gr) = (gpu_trainer.read_grads(g).unwrap(), &reference.grads);
    let norm = |v: &mut dyn Iterator<Item = f32>| v.map(|x| x * x).sum::<f32>().sqrt();
    let apart = norm(&mut gg.iter().zip(gr).map(|(a, b)| a - b)) / norm(&mut gr.iter().copied());
    assert!(apart < DRAWN_REL, "{label}: gradient of step {step} differs by {apart} of its norm");
    // The weights after the step: a component whose gradient is rounding noise may move lr
    // the other way (2 lr apart), the rest must agree closely.
    let (wg, wr) = (pollster::block_on(gpu_trainer.read_params(g)).unwrap(), &reference.params);
    let diffs: Vec<f32> = wg.iter().zip(wr).map(|(a, b)| (a - b).abs()).collect();
    let (worst, mean) = (diffs.iter().fold(0.0f32, |m, &d| m.max(d)), diffs.iter().sum::<f32>() / diffs.len() as f32);
    assert!(
        worst <= 2.0 * 3e-3 + 1e-6 && mean < 1e-5,
        "{label}: weights after step {step} differ by up to {worst}, {mean} on average"
    );
}

/// The GPU trainer's weights, Adam moments, baseline and latent table, into the reference trainer.
fn take_state(
    reference: &mut wgvae::reference::trainer::ReferenceTrainer,
    trainer: &wgvae::trainer::GpuTrainer,
    g: &Gpu,
) {
    let (params, m, v) = pollster::block_on(trainer.read_training_state(g)).unwrap();
    (reference.params, reference.m, reference.v) = (params, m, v);
    reference.baseline = pollster::block_on(trainer.baseline_state(g)).unwrap();
    if let Some(table) = pollster::block_on(trainer.read_table(g)).unwrap() {
        reference.table = table;
    }
}

#[test]
fn gpu_training_steps_should_match_reference_trainer() {
    Case::scalar().check();
    Case::vec4().check();
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_with_either_kernel_family() {
    // Both families on this adapter, whichever it picks: CPU adapters train on the register tiles,
    // GPUs on the workgroup-memory tiles (split reductions and the fused bias included).
    for family in [KernelFamily::Cpu, KernelFamily::Gpu] {
        Case::scalar().kernels(family).check();
        let iwae = ObjectiveSettings { gradient: Gradient::Iwae, samples: 3, ..ObjectiveSettings::default() };
        Case::vec4().objective(iwae).kernels(family).check();
        let per_datapoint = ObjectiveSettings { per_datapoint: Some((2, 0.05)), ..ObjectiveSettings::default() };
        Case::scalar().objective(per_datapoint).gaussian().kernels(family).check();
        Case::vec4().conditional(10).kernels(family).check();
        // The score function (its rec fused on GPUs, the baseline after) and free bits (the gated
        // fused latent gradient).
        let score = ObjectiveSettings {
            gradient: Gradient::Score { baseline: Baseline::Mean },
            samples: 2,
            ..ObjectiveSettings::default()
        };
        Case::scalar().objective(score).kernels(family).check();
        let free_bits = ObjectiveSettings {
            samples: 2,
            gradient: Gradient::Reparam { free_bits: 0.05 },
            ..ObjectiveSettings::default()
        };
        Case::vec4().objective(free_bits).kernels(family).check();
    }
    // Batch 13 is narrow: on this adapter the GPU family's split products take the subgroup
    // kernel; without subgroups they split on the tiled one, and the first layer gathers x.
    let gpu = || Case::scalar().kernels(KernelFamily::Gpu).without_subgroups();
    gpu().check();
    gpu().objective(ObjectiveSettings { gradient: Gradient::Iwae, samples: 3, ..Default::default() }).check();
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_for_every_objective() {
    let base = ObjectiveSettings::default();
    let modes = [
        ObjectiveSettings { gradient: Gradient::Iwae, samples: 3, ..base.clone() },
        ObjectiveSettings { gradient: Gradient::Score { baseline: Baseline::Loo }, samples: 3, ..base.clone() },
        ObjectiveSettings { gradient: Gradient::Score { baseline: Baseline::Mean }, samples: 2, ..base.clone() },
        ObjectiveSettings {
            gradient: Gradient::Score { baseline: Baseline::None },
            samples: 1,
            beta: 0.7,
            warmup_steps: 3,
            ..base.clone()
        },
        ObjectiveSettings {
            samples: 2,
            beta: 0.5,
            warmup_steps: 3,
            gradient: Gradient::Reparam { free_bits: 0.05 },
            ..base.clone()
        },
    ];
    for mode in modes {
        Case::scalar().objective(mode).check();
    }
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_with_a_gaussian_decoder() {
    Case::vec4().gaussian().check();
    let iwae = ObjectiveSettings { gradient: Gradient::Iwae, samples: 2, ..ObjectiveSettings::default() };
    Case::scalar().objective(iwae).gaussian().check();
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_for_a_conditional_model() {
    // latent 6 + class block 12: scalar kernels; latent 8 + 12 = 20 and 784 + 12: vec4 kernels.
    Case::scalar().conditional(10).check();
    let two = ObjectiveSettings { samples: 2, beta: 0.5, warmup_steps: 2, ..ObjectiveSettings::default() };
    Case::vec4().objective(two).gaussian().conditional(10).check();
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_with_per_datapoint_inference() {
    let per_datapoint = ObjectiveSettings {
        per_datapoint: Some((2, 0.05)),
        beta: 0.7,
        warmup_steps: 3,
        ..ObjectiveSettings::default()
    };
    Case::scalar().objective(per_datapoint.clone()).check();
    Case::vec4().objective(per_datapoint).gaussian().check();
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_with_categorical_latents() {
    Case::scalar().categorical(4, 5).check();
    let warm = ObjectiveSettings { samples: 2, beta: 0.5, warmup_steps: 2, ..ObjectiveSettings::default() };
    Case::vec4().objective(warm).categorical(3, 4).check();
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_with_a_conv_vae() {
    Case::conv(6).check();
    let iwae = ObjectiveSettings { gradient: Gradient::Iwae, samples: 2, ..ObjectiveSettings::default() };
    Case::conv(4).objective(iwae).gaussian().check();
    Case::conv(8).categorical(2, 4).check();
    // A conditional conv VAE: the class block joins the map at fc21/fc22 and z at fc3.
    let two = ObjectiveSettings { samples: 2, ..ObjectiveSettings::default() };
    Case::conv(6).objective(two).conditional(10).check();
}
