// The page: controls and query parameters become `wgvae train` flags; a WebRun (the wgvae crate
// in wasm) trains an epoch at a time and every wait on the GPU is an awaited promise, so the page
// stays responsive. This file only draws and moves bytes: the math is the crate's.
import init, { WebRun } from "./wgvae_web.js";
import { Explorer } from "./explorer.js";
import { drawCurves } from "./curves.js";

const $ = (id) => document.getElementById(id);
const CONTROLS = ["epochs", "batch", "latent", "hidden", "lr", "seed", "kernels"];
const query = new URLSearchParams(location.search);

let data = null; // the embedded set's two files, fetched once
let run = null; // the current WebRun
let stopRequested = false;
const curve = { ticks: [], val: [] };
const explorer = new Explorer($("explorer-image"), $("manifold"), $("sliders"), $("from-digit"), $("explorer-caption"));
// What automation reads back (tests/browser.py): per-epoch metrics and timings.
window.wgvae = { history: [], explorer, firstEpochMs: null };

function status(text) {
  $("status").textContent = text;
}

function fail(message) {
  $("error").hidden = false;
  $("error").textContent = message;
  document.title = `wgvae error ${message}`;
  status("Stopped.");
  setBusy(false);
}
// The wasm module's panic hook reports a panic (a bug); GPU failures reject the method's Promise.
window.wgvaeFatal = fail;

function setBusy(busy) {
  $("train").disabled = busy || !data;
  $("stop").disabled = !busy;
  $("open").disabled = busy || !data;
  for (const name of CONTROLS) $("settings").elements[name].disabled = busy;
  const ready = !busy && run !== null;
  $("download-checkpoint").disabled = !ready;
  $("download-model").disabled = !ready;
  $("continue").disabled = !ready || run.epochs_left() === 0;
}

// The controls as `wgvae train` flags, then any others the `flags` query parameter gives
// (`?flags=--objective iwae --k 5`): the CLI's parser checks them all.
function flags() {
  const form = $("settings").elements;
  const extra = (query.get("flags") ?? "").split(/\s+/).filter(Boolean);
  return CONTROLS.flatMap((name) => [`--${name}`, String(form[name].value)]).concat(extra);
}

async function fetchBytes(name) {
  const response = await fetch(name);
  if (!response.ok) throw new Error(`fetching ${name}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

// WebGPU's absence is told before the wasm module or the data is loaded, so nothing is allocated.
async function checkWebGpu() {
  if (!navigator.gpu) {
    throw new Error("This browser has no WebGPU (navigator.gpu is missing). Use a current Chrome, Edge or Safari, or " +
      "Firefox 141 or later; Chromium on Linux needs --enable-unsafe-webgpu (and --enable-features=Vulkan for a real GPU).");
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    throw new Error("WebGPU is there but offers no adapter: the browser may block this GPU or its driver. " +
      "Try chrome://gpu for the reason, update the driver, or start Chrome with --enable-unsafe-webgpu.");
  }
  const info = adapter.info ?? {};
  return [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "an unnamed adapter";
}

async function showPictures() {
  const [samples, reconstructions] = [await run.samples(), await run.reconstructions()];
  for (const [id, image] of [["samples", samples], ["reconstructions", reconstructions]]) {
    const canvas = $(id);
    [canvas.width, canvas.height] = [image.width, image.height];
    canvas.getContext("2d").putImageData(image, 0, 0);
  }
}

let adapterName = "";
function describe(info) {
  return `${info.model}, ${info.parameters.toLocaleString()} parameters; ${info.train.toLocaleString()} training / ` +
    `${info.val.toLocaleString()} validation digits; WebGPU adapter ${adapterName}, ${info.kernels} kernels`;
}

// Trains the current run's remaining epochs, drawing after every tick and epoch.
async function trainEpochs() {
  const info = JSON.parse(run.describe());
  status(describe(info));
  for (let epoch = info.epochs_done; epoch < info.epochs && !stopRequested; epoch++) {
    const onTick = (done, steps, loss) => {
      $("progress").value = (epoch + done / steps) / info.epochs;
      curve.ticks.push([epoch + done / steps, loss]);
      drawCurves($("curves"), curve);
    };
    const m = JSON.parse(await run.train_epoch(onTick));
    window.wgvae.firstEpochMs ??= performance.now();
    window.wgvae.history.push(m);
    curve.val.push([m.epoch, m.val_loss]);
    drawCurves($("curves"), curve);
    await showPictures();
    $("samples-caption").textContent = `Samples from the prior after epoch ${m.epoch}`;
    status(`epoch ${m.epoch}/${info.epochs}: train ${m.train_loss.toFixed(3)} (rec ${m.train_rec.toFixed(3)}, ` +
      `KL ${m.train_kl.toFixed(3)}), validation ${m.val_loss.toFixed(3)}, ${m.seconds.toFixed(2)} s, ` +
      `${Math.round(m.images_per_second).toLocaleString()} images/s · ${describe(info)}`);
  }
  await explorer.attach(run, info);
  return window.wgvae.history.at(-1);
}

// Trains a new run from the controls, or (`more`) the current run's remaining epochs.
async function train(event, more = false) {
  event?.preventDefault();
  setBusy(true);
  $("error").hidden = true;
  stopRequested = false;
  try {
    if (!more) {
      curve.ticks = [];
      curve.val = [];
      window.wgvae.history = [];
      run?.free();
      run = null;
      status("Building the model on the GPU…");
      run = await WebRun.create(flags(), data.images, data.labels);
    }
    const last = await trainEpochs();
    document.title = last ? `wgvae done val_loss=${last.val_loss}` : "wgvae done";
  } catch (e) {
    fail(e?.message ?? String(e));
    return;
  }
  setBusy(false);
}

async function download(modelOnly) {
  const bytes = await run.checkpoint(modelOnly);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  link.download = modelOnly ? "model.safetensors" : "checkpoint.safetensors";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

async function openCheckpoint() {
  const file = $("open").files[0];
  if (!file) return;
  setBusy(true);
  $("error").hidden = true;
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    run?.free();
    run = null;
    run = await WebRun.open(bytes, data.images, data.labels, $("settings").elements.kernels.value);
    const info = JSON.parse(run.describe());
    window.wgvae.history = [];
    curve.ticks = [];
    curve.val = info.history.map((m) => [m.epoch, m.val_loss]);
    drawCurves($("curves"), curve);
    await showPictures();
    await explorer.attach(run, info);
    $("samples-caption").textContent = `Samples from the prior of ${file.name} (${info.epochs_done} epochs trained)`;
    status(`Opened ${file.name}: ${describe(info)}`);
    document.title = "wgvae opened";
  } catch (e) {
    fail(`${file.name}: ${e?.message ?? String(e)}`);
    return;
  } finally {
    $("open").value = "";
  }
  setBusy(false);
}

async function main() {
  for (const name of CONTROLS) {
    if (query.has(name)) $("settings").elements[name].value = query.get(name);
  }
  setBusy(true);
  $("stop").disabled = true;
  try {
    const adapter = await checkWebGpu();
    adapterName = adapter;
    status(`Loading wgvae and the digits… (WebGPU adapter: ${adapter})`);
    await init();
    const [images, labels] = await Promise.all(
      ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"].map(fetchBytes));
    data = { images, labels };
    status(`Ready. WebGPU adapter: ${adapter}.`);
  } catch (e) {
    fail(e?.message ?? String(e));
    return;
  }
  setBusy(false);
  $("settings").addEventListener("submit", train);
  $("stop").addEventListener("click", () => { stopRequested = true; $("stop").disabled = true; });
  $("continue").addEventListener("click", () => train(null, true));
  $("download-checkpoint").addEventListener("click", () => download(false).catch((e) => fail(String(e))));
  $("download-model").addEventListener("click", () => download(true).catch((e) => fail(String(e))));
  $("open").addEventListener("change", openCheckpoint);
  if (query.get("autostart") === "1") await train();
}

main();
