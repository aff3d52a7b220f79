#!/usr/bin/env python3
"""The pytorch/examples VAE (vae/main.py) on wgvae's embedded data and split, for comparing losses.

    pip install torch numpy
    python3 tests/pytorch_vae.py --epochs 10 --seed 1

Same model (784-400-20-400-784, ReLU, nn.Linear init), loss (BCE summed over pixels + analytic KL),
Adam lr 1e-3, batch 128, and the same data: assets/*.gz, every tenth image (index % 10 == 9) held
out for validation. Like wgvae, each epoch takes full batches of a fresh shuffle (drop_last=True).
Prints nats per example, the unit pytorch/examples prints and wgvae's metrics.csv holds.

    python3 tests/pytorch_vae.py --arch conv --conv-channels 32 64

trains wgvae's conv VAE instead (`wgvae train --arch conv`): per width a Conv2d(4, 2, 1) + ReLU,
fc21 / fc22; fc3 + ReLU to the last map, a ConvTranspose2d(4, 2, 1) per width in reverse with ReLU
between, the last giving logits; `enc` and `dec` are nn.ModuleLists, so a wgvae conv checkpoint
loads strictly (`--checkpoint` with `--arch conv`).

    python3 tests/pytorch_vae.py --checkpoint RUN_DIR/model.safetensors --iw-samples 1 100 1000

loads a wgvae checkpoint into the same model with `load_state_dict(safetensors.torch.load_file(...))`
and evaluates it on the validation split instead: the negative ELBO and the importance-sampled
-log p(x) for each K, to set beside `wgvae eval`.
Not run by `cargo test`; it is the harness behind the comparisons in the README.
"""
import argparse, gzip, time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def load():
    raw = gzip.open(ASSETS / "train-images-idx3-ubyte.gz").read()
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0
    val = np.arange(len(images)) % 10 == 9
    return torch.from_numpy(images[~val].copy()), torch.from_numpy(images[val].copy())


class VAE(nn.Module):  # pytorch/examples vae/main.py
    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


class ConvVAE(nn.Module):  # wgvae --arch conv (model.rs conv_paths)
    def __init__(self, channels, latent=20, side=28):
        super().__init__()
        widths = [1] + list(channels)
        self.enc = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(widths, widths[1:]))
        self.map = (widths[-1], side >> len(channels), side >> len(channels))
        deepest = self.map[0] * self.map[1] * self.map[2]
        self.fc21, self.fc22 = nn.Linear(deepest, latent), nn.Linear(deepest, latent)
        self.fc3 = nn.Linear(latent, deepest)
        self.dec = nn.ModuleList(nn.ConvTranspose2d(b, a, 4, 2, 1) for a, b in reversed(list(zip(widths, widths[1:]))))

    def encode(self, x):
        h = x.view(-1, 1, 28, 28)
        for conv in self.enc:
            h = F.relu(conv(h))
        h = h.flatten(1)
        return self.fc21(h), self.fc22(h)

    def logits(self, z):
        h = F.relu(self.fc3(z)).view(-1, *self.map)
        for i, deconv in enumerate(self.dec):
            h = deconv(h)
            if i + 1 < len(self.dec):
                h = F.relu(h)
        return h.flatten(1)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.logits(z)), mu, logvar


def make_model(a):
    return ConvVAE(a.conv_channels) if a.arch == "conv" else VAE()


def encode(model, x):
    if isinstance(model, ConvVAE):
        return model.encode(x)
    h = F.relu(model.fc1(x))
    return model.fc21(h), model.fc22(h)


def decode_logits(model, z):
    return model.logits(z) if isinstance(model, ConvVAE) else model.fc4(F.relu(model.fc3(z)))


def loss_terms(recon, x, mu, logvar):
    rec = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return rec, kl


def evaluate_checkpoint(a):
    from safetensors.torch import load_file
    path, ks, seed = a.checkpoint, a.iw_samples, a.seed
    torch.manual_seed(seed)
    model = make_model(a)
    model.load_state_dict(load_file(path))  # strict: every name and shape must match
    model.eval()
    _, val = load()
    with torch.no_grad():
        started = time.perf_counter()
        rec = kl = 0.0
        for s in range(0, len(val), 128):
            x = val[s:s + 128]
            mu, logvar = encode(model, x)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            logits = decode_logits(model, z)
            rec += F.binary_cross_entropy_with_logits(logits, x, reduction="sum").item()
            kl += (-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())).item()
        n = len(val)
        print(f"negative ELBO {(rec + kl) / n:.3f} (rec {rec / n:.3f} + KL {kl / n:.3f})  "
              f"{time.perf_counter() - started:.2f} s")
        for k in ks:
            started = time.perf_counter()
            nll = []
            for i in range(len(val)):
                x = val[i:i + 1]
                mu, logvar = encode(model, x)
                eps = torch.randn(k, mu.shape[1])
                z = mu + eps * torch.exp(0.5 * logvar)
                logits = decode_logits(model, z)
                log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand(k, -1), reduction="none").sum(1)
                log_ratio = 0.5 * (eps.pow(2) + logvar - z.pow(2)).sum(1)  # log p(z) - log q(z|x)
                nll.append(-(torch.logsumexp(log_px_z + log_ratio, 0) - np.log(k)).item())
            nll = np.array(nll)
            print(f"-log p(x) (IS, K = {k}) {nll.mean():.3f} ± {nll.std(ddof=1) / np.sqrt(len(nll)):.3f}  "
                  f"{time.perf_counter() - started:.2f} s", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint", help="evaluate this wgvae model.safetensors instead of training")
    p.add_argument("--iw-samples", type=int, nargs="+", default=[1, 100, 1000])
    p.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    p.add_argument("--conv-channels", type=int, nargs="+", default=[32, 64])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.checkpoint:
        return evaluate_checkpoint(a)
    torch.manual_seed(a.seed)
    train, val = load()
    model = make_model(a)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = 128
    print("epoch,train_loss,train_rec,train_kl,val_loss,val_rec,val_kl,seconds,images_per_second")
    for epoch in range(1, a.epochs + 1):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(len(train))
        steps = len(train) // batch
        tr = tk = 0.0
        for s in range(steps):
            x = train[order[s * batch:(s + 1) * batch]]
            recon, mu, logvar = model(x)
            rec, kl = loss_terms(recon, x, mu, logvar)
            opt.zero_grad()
            (rec + kl).backward()
            opt.step()
            tr, tk = tr + rec.item(), tk + kl.item()
        seconds = time.perf_counter() - started
        n = steps * batch
        model.eval()
        vr = vk = 0.0
        with torch.no_grad():
            for s in range(0, len(val), batch):
                x = val[s:s + batch]
                recon, mu, logvar = model(x)
                rec, kl = loss_terms(recon, x, mu, logvar)
                vr, vk = vr + rec.item(), vk + kl.item()
        m = len(val)
        print(f"{epoch},{(tr + tk) / n:.4f},{tr / n:.4f},{tk / n:.4f},{(vr + vk) / m:.4f},{vr / m:.4f},{vk / m:.4f},"
              f"{seconds:.3f},{n / seconds:.1f}", flush=True)


if __name__ == "__main__":
    main()
