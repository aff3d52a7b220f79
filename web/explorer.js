// The latent explorer: sliders over z's dimensions decoded live (one decode in flight; the latest
// z goes next), and for a 2-D latent the decoded manifold, where pointing picks z at the prior's
// quantiles as `wgvae manifold` lays them out.
import { normal_quantile } from "./wgvae_web.js";

const MANIFOLD = 15; // images per side of the manifold grid
const SHOWN = 32; // sliders shown at most; further dimensions stay at 0

export class Explorer {
  constructor(image, manifold, sliders, fromDigit, caption) {
    Object.assign(this, { image, manifold, sliders, fromDigit, caption });
    this.run = null;
    this.z = [];
    this.drawing = null; // the decode in flight
    this.again = false; // z changed while it ran
    this.redraws = 0;
    fromDigit.addEventListener("click", () => this.fromValidationDigit());
    const pick = (event) => {
      if (event.buttons !== 1 && event.type !== "click") return;
      const box = manifold.getBoundingClientRect();
      const fx = (event.clientX - box.left) / box.width;
      const fy = (event.clientY - box.top) / box.height;
      const q = (f) => normal_quantile(Math.min(Math.max((f * MANIFOLD + 0.5) / (MANIFOLD + 1), 0.001), 0.999));
      this.set([q(fx), q(1 - fy)]);
    };
    manifold.addEventListener("pointermove", pick);
    manifold.addEventListener("click", pick);
  }

  // A new run (or checkpoint): sliders for its latent, the manifold for a 2-D one, z = 0.
  async attach(run, info) {
    this.run = run;
    this.z = new Array(info.latent).fill(0);
    this.sliders.replaceChildren();
    this.inputs = this.z.slice(0, SHOWN).map((_, i) => {
      const input = Object.assign(document.createElement("input"), { type: "range", min: -3, max: 3, step: 0.05, value: 0 });
      input.dataset.dim = i;
      input.addEventListener("input", () => {
        this.z[i] = Number(input.value);
        this.draw();
      });
      const label = document.createElement("label");
      label.append(`z${i + 1} `, input);
      this.sliders.append(label);
      return input;
    });
    this.fromDigit.disabled = false;
    this.manifold.hidden = info.latent !== 2;
    if (info.latent === 2) {
      const grid = await run.manifold(MANIFOLD);
      [this.manifold.width, this.manifold.height] = [grid.width, grid.height];
      this.manifold.getContext("2d").putImageData(grid, 0, 0);
    }
    const more = info.latent > SHOWN ? ` (the first ${SHOWN} of ${info.latent} dimensions)` : "";
    this.caption.textContent = info.latent === 2
      ? "Latent explorer: point at the manifold, or move the sliders"
      : `Latent explorer: move the sliders over z${more}, decoded live`;
    await this.draw();
  }

  // Sets z (and the sliders) and redraws.
  set(z) {
    z.forEach((v, i) => {
      this.z[i] = v;
      if (this.inputs[i]) this.inputs[i].value = v;
    });
    return this.draw();
  }

  async fromValidationDigit() {
    const index = Math.floor(Math.random() * 1000);
    const mean = await this.run.latent_mean(index);
    await this.set(Array.from(mean));
  }

  // Decodes the current z; while a decode runs, later changes wait and the latest one goes next.
  draw() {
    if (this.drawing) {
      this.again = true;
      return this.drawing;
    }
    this.drawing = (async () => {
      try {
        do {
          this.again = false;
          const image = await this.run.decode(Float32Array.from(this.z), 1);
          [this.image.width, this.image.height] = [image.width, image.height];
          this.image.getContext("2d").putImageData(image, 0, 0);
          this.redraws += 1;
        } while (this.again);
      } finally {
        this.drawing = null;
      }
    })();
    return this.drawing;
  }
}
