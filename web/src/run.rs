//! One training run in the page: a wgvae `Session` opened on the browser's adapter, trained an
//! epoch at a time with the CLI's ticks, and pictured and saved through the crate's own code.
//! Methods return Promises: JavaScript awaits them one at a time (the page's buttons wait), and
//! no RefCell borrow is held across an await.
use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web_sys::ImageData;

use wgvae::checkpoint::{self, Checkpoint, EpochMetrics};
use wgvae::config::RunConfig;
use wgvae::data::Dataset;
use wgvae::draws::{epoch_order, manifold_latents, prior_draws};
use wgvae::gpu::faults::GpuFault;
use wgvae::gpu::params::LossTotals;
use wgvae::images::{reconstruction_rows, Grid};
use wgvae::session::{self, Session};
use wgvae::trainer::{EpochControl, EpochSteps};

use crate::js_error;

/// The page's side of an epoch's steps: `on_tick(done, steps, loss)` after each tick is read.
struct PageControl<'a>(&'a Function);

impl EpochControl for PageControl<'_> {
    fn tick(&mut self, done: usize, steps: usize, totals: &LossTotals) -> anyhow::Result<()> {
        let (done, steps, loss) = (done as f64, steps as f64, totals.means().0 as f64);
        self.0.call3(&JsValue::NULL, &done.into(), &steps.into(), &loss.into()).ok();
        Ok(())
    }
}

fn gpu_error(e: GpuFault) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// Validation images shown with their reconstructions.
const RECONSTRUCTIONS: usize = 16;

struct Run {
    session: Session,
    /// The prior draws every epoch's sample grid decodes (the CLI's, for the same seed).
    prior: Vec<f32>,
    /// Epochs done and their metrics, as a checkpoint's progress records them.
    history: RefCell<Vec<EpochMetrics>>,
}

#[wasm_bindgen]
pub struct WebRun {
    run: Rc<Run>,
}

fn data(images: &[u8], labels: &[u8]) -> Result<Dataset, JsError> {
    wgvae::data::embedded_from(images, labels).map_err(js_error)
}

/// The grid as ImageData on a copy in JavaScript's memory: ImageData keeps the array it is given,
/// and a view of wasm memory would change under it.
fn image_data(grid: &Grid) -> Result<ImageData, JsValue> {
    let rgba = js_sys::Uint8ClampedArray::from(&grid.rgba()[..]);
    ImageData::new_with_js_u8_clamped_array_and_sh(&rgba, grid.width as u32, grid.height as u32)
}

/// What the page cannot draw or validate as the CLI does: a conditional model's samples come
/// from p(z|y) per class, and a per-datapoint model is validated by refining each image's q.
fn check_supported(config: &RunConfig) -> Result<(), JsError> {
    if config.classes() > 0 {
        return Err(JsError::new("the page runs unconditional models; a conditional one is the CLI's (`wgvae train --conditional`, `wgvae sample --class`)"));
    }
    if config.per_datapoint() {
        return Err(JsError::new("the page runs models with an encoder; per-datapoint inference is the CLI's (`wgvae train --inference per-datapoint`)"));
    }
    Ok(())
}

fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

#[wasm_bindgen]
impl WebRun {
    /// A new run: `flags` are `wgvae train`'s (--epochs, --batch, --latent, --hidden, --lr,
    /// --seed, ...), `images` and `labels` the embedded set's two files. Sizes are checked
    /// against the adapter's limits before anything is allocated.
    pub async fn create(flags: Vec<String>, images: Vec<u8>, labels: Vec<u8>) -> Result<WebRun, JsError> {
        let (config, device) = wgvae::cli::train_config(&flags).map_err(js_error)?;
        let data = data(&images, &labels)?;
        let config = session::complete_config(config, &data).map_err(js_error)?;
        check_supported(&config)?;
        let session = session::open_new_async(config, &device, data).await.map_err(js_error)?;
        Ok(WebRun::new(session, Vec::new()))
    }

    /// A run from a checkpoint the CLI (or this page) wrote: its config, weights and, from a
    /// checkpoint.safetensors, Adam's state and history, so training can go on after its last
    /// whole epoch (an epoch the CLI's Ctrl-C cut short starts again from its first step).
    pub async fn open(file: Vec<u8>, images: Vec<u8>, labels: Vec<u8>, kernels: String) -> Result<WebRun, JsError> {
        let ck = checkpoint::from_bytes(&file).map_err(js_error)?;
        check_supported(&ck.config)?;
        let data = data(&images, &labels)?;
        if ck.config.shape != data.shape {
            return Err(JsError::new(&format!(
                "this checkpoint's model takes {} images; the page has only the embedded MNIST digits ({})",
                ck.config.shape, data.shape
            )));
        }
        let flags = ["--kernels".to_string(), kernels];
        let (_, device) = wgvae::cli::train_config(&flags).map_err(js_error)?;
        let session = session::open_async(ck.config.clone(), &device, data, &ck.params).await.map_err(js_error)?;
        let history = ck.progress.as_ref().map(|p| p.history.clone()).unwrap_or_default();
        if let (Some((m, v)), Some(p)) = (&ck.adam, &ck.progress) {
            session.trainer.restore(&session.gpu, &ck.params, m, v, p.optimizer_step);
            session.trainer.set_baseline_state(&session.gpu, p.baseline_bits.map(f32::from_bits));
        }
        Ok(WebRun::new(session, history))
    }

    fn new(session: Session, history: Vec<EpochMetrics>) -> WebRun {
        let prior = prior_draws(&session.config, 64, session.config.seed);
        WebRun { run: Rc::new(Run { session, prior, history: RefCell::new(history) }) }
    }

    /// The kernel family, the model and the data, as JSON: {kernels, model, parameters, train,
    /// val, epochs, epochs_done, latent, batch, steps_per_epoch, history, config}.
    pub fn describe(&self) -> String {
        let Session { config, gpu, data, trainer, .. } = &self.run.session;
        serde_json::json!({
            "kernels": format!("{:?}", gpu.plan().family()),
            "model": config.describe(),
            "parameters": trainer.model.layers().map(|l| l.weight_len() + l.bias_len()).sum::<usize>(),
            "train": data.train.len(),
            "val": data.val.len(),
            "epochs": config.epochs,
            "epochs_done": self.run.history.borrow().len(),
            "latent": config.latent_width(),
            "batch": config.batch,
            "steps_per_epoch": trainer.steps_per_epoch,
            "history": *self.run.history.borrow(),
            "config": config,
        })
        .to_string()
    }

    /// Epochs the run's config has left to train.
    pub fn epochs_left(&self) -> usize {
        self.run.session.config.epochs.saturating_sub(self.run.history.borrow().len())
    }

    /// Trains the next epoch as the CLI does (GpuTrainer::run_steps), `on_tick(done, steps,
    /// loss)` after each read; then the validation pass. Resolves to the epoch's metrics as JSON.
    pub fn train_epoch(&self, on_tick: Function) -> Promise {
        let run = self.run.clone();
        future_to_promise(async move {
            let metrics = run.train_epoch(&on_tick).await.map_err(|e| JsValue::from(js_error(e)))?;
            Ok(JsValue::from(serde_json::to_string(&metrics).map_err(|e| JsError::new(&e.to_string()))?))
        })
    }

    /// The 8 x 8 grid of the prior draws decoded (the CLI's samples.png).
    pub fn samples(&self) -> Promise {
        let run = self.run.clone();
        future_to_promise(async move {
            let s = &run.session;
            let images = s.trainer.decode(&s.gpu, &run.prior, &[]).await.map_err(gpu_error)?;
            Ok(image_data(&Grid::new(&images, 64, s.data.shape, 8))?.into())
        })
    }

    /// Validation digits (odd rows) above their reconstructions (even rows).
    pub fn reconstructions(&self) -> Promise {
        let run = self.run.clone();
        future_to_promise(async move {
            let s = &run.session;
            let n = RECONSTRUCTIONS.min(s.data.val.len());
            let picks: Vec<u32> = (0..n).map(|i| (i * s.data.val.len() / n) as u32).collect();
            let (x, probs) = s.trainer.reconstruct(&s.gpu, &picks).await.map_err(gpu_error)?;
            let rows = reconstruction_rows(&x, &probs, n, s.data.shape);
            Ok(image_data(&Grid::new(&rows, rows.len() / s.data.shape.pixels(), s.data.shape, 8))?.into())
        })
    }

    /// Decodes latents `z` [n, latent] into a grid of `cols` columns.
    pub fn decode(&self, z: Vec<f32>, cols: usize) -> Promise {
        let run = self.run.clone();
        future_to_promise(async move {
            let s = &run.session;
            let latent = s.config.latent_width();
            if z.is_empty() || !z.len().is_multiple_of(latent) {
                return Err(JsError::new(&format!("decode: {} values are not rows of {latent}", z.len())).into());
            }
            let images = s.trainer.decode(&s.gpu, &z, &[]).await.map_err(gpu_error)?;
            Ok(image_data(&Grid::new(&images, z.len() / latent, s.data.shape, cols.max(1)))?.into())
        })
    }

    /// For a 2-D latent: the n x n grid at the prior's quantiles (the CLI's manifold.png).
    pub fn manifold(&self, n: usize) -> Promise {
        self.decode(manifold_latents(n), n)
    }

    /// The latent mean of validation image `index`, for the explorer's starting point.
    pub fn latent_mean(&self, index: u32) -> Promise {
        let run = self.run.clone();
        future_to_promise(async move {
            let s = &run.session;
            let picked = index.min(s.data.val.len() as u32 - 1);
            let mulv = s.trainer.encode(&s.gpu, &[picked]).await.map_err(gpu_error)?;
            Ok(js_sys::Float32Array::from(&mulv[..s.config.latent_width()]).into())
        })
    }

    /// checkpoint.safetensors (with Adam's state and progress) or, with `model_only`,
    /// model.safetensors: the bytes the CLI writes, so `wgvae sample --checkpoint` and PyTorch
    /// load them.
    pub fn checkpoint(&self, model_only: bool) -> Promise {
        let run = self.run.clone();
        future_to_promise(async move {
            let ck = run.snapshot().await.map_err(gpu_error)?;
            let bytes = checkpoint::to_bytes(&ck, &run.session.trainer.model, !model_only)
                .map_err(|e| JsValue::from(js_error(e)))?;
            Ok(Uint8Array::from(&bytes[..]).into())
        })
    }
}

impl Run {
    async fn train_epoch(&self, on_tick: &Function) -> anyhow::Result<EpochMetrics> {
        let Session { config, gpu, data, trainer, .. } = &self.session;
        let epoch = self.history.borrow().len() + 1;
        if epoch > config.epochs {
            anyhow::bail!("the run has finished all {} of its epochs", config.epochs);
        }
        let steps = trainer.steps_per_epoch;
        let started = now_seconds();
        let order = epoch_order(data.train.len(), config.seed, epoch);
        let from = EpochSteps { done: 0, totals: LossTotals::default() };
        let ran = trainer.run_steps(gpu, (epoch, &order), from, &mut PageControl(on_tick)).await?;
        let seconds = now_seconds() - started;
        let val = trainer.evaluate(gpu).await?;
        let metrics = EpochMetrics::from_totals(epoch, &ran.totals, &val, seconds, steps * config.batch)?;
        self.history.borrow_mut().push(metrics.clone());
        Ok(metrics)
    }

    /// The run between epochs, as the CLI's checkpoint after an epoch records it.
    async fn snapshot(&self) -> Result<Checkpoint, GpuFault> {
        let Session { config, gpu, trainer, .. } = &self.session;
        let history = self.history.borrow().clone();
        let epochs_done = history.len();
        trainer.snapshot(gpu, config, &history, epochs_done, 0, LossTotals::default()).await
    }
}
