"""Reads a wgvae run's checkpoints with numpy and safetensors alone (no wgvae code) and recomputes
the decoder's output for given latents, to check that other tools can use the files.

usage: checkpoint_interop.py RUN_DIR Z_FILE PROBS_FILE
  Z_FILE: latents [n, latent], little-endian float32; PROBS_FILE: wgvae's decoder probabilities
  for them, [n, 784]. Exits non-zero, saying why, when anything disagrees.
"""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

# The state_dict of pytorch/examples' VAE (vae/main.py): nn.Linear weights are [out, in].
PYTORCH_KEYS = {f"{layer}.{p}" for layer in ["fc1", "fc21", "fc22", "fc3", "fc4"] for p in ["weight", "bias"]}


def main(run_dir, z_file, probs_file):
    model = load_file(f"{run_dir}/model.safetensors")
    if set(model) != PYTORCH_KEYS:
        sys.exit(f"model.safetensors keys {sorted(model)} are not pytorch/examples' {sorted(PYTORCH_KEYS)}")
    with safe_open(f"{run_dir}/checkpoint.safetensors", "np") as f:
        config = json.loads(f.metadata()["wgvae.config"])
    shape = config["shape"]
    (hidden,), latent = config["hidden"], config["latent"]
    pixels = shape["channels"] * shape["height"] * shape["width"]
    shapes = {"fc1.weight": (hidden, pixels), "fc1.bias": (hidden,), "fc21.weight": (latent, hidden),
              "fc21.bias": (latent,), "fc22.weight": (latent, hidden), "fc22.bias": (latent,),
              "fc3.weight": (hidden, latent), "fc3.bias": (hidden,), "fc4.weight": (pixels, hidden),
              "fc4.bias": (pixels,)}
    for name, shape in shapes.items():
        if model[name].shape != shape or model[name].dtype != np.float32:
            sys.exit(f"{name}: {model[name].dtype} {model[name].shape}, expected float32 {shape}")
    checkpoint = load_file(f"{run_dir}/checkpoint.safetensors")
    for name in PYTORCH_KEYS:
        if not np.array_equal(checkpoint[name], model[name]):
            sys.exit(f"{name} differs between checkpoint.safetensors and model.safetensors")
        for moment in ["exp_avg", "exp_avg_sq"]:
            if checkpoint[f"optimizer.{moment}.{name}"].shape != model[name].shape:
                sys.exit(f"optimizer.{moment}.{name} has the wrong shape")

    z = np.fromfile(z_file, dtype="<f4").reshape(-1, latent).astype(np.float64)
    w = {k: v.astype(np.float64) for k, v in model.items()}
    h = np.maximum(z @ w["fc3.weight"].T + w["fc3.bias"], 0.0)
    probs = 1.0 / (1.0 + np.exp(-(h @ w["fc4.weight"].T + w["fc4.bias"])))
    got = np.fromfile(probs_file, dtype="<f4").reshape(probs.shape)
    err = np.abs(got - probs).max()
    print(f"decoder output for {len(z)} latents: max |wgvae - numpy| = {err:.2e}")
    if not err < 1e-4:
        sys.exit(f"decoder outputs differ by {err} (tolerance 1e-4)")


if __name__ == "__main__":
    main(*sys.argv[1:4])
