#!/usr/bin/env python3
"""The pytorch/examples VAE (vae/main.py) on wgvae's embedded data and split, for comparing losses.

    pip install torch numpy
    python3 tests/pytorch_vae.py --epochs 10 --seed 1

Same model (784-400-20-400-784, ReLU, nn.Linear init), loss (BCE summed over pixels + analytic KL),
Adam lr 1e-3, batch 128, and the same data: assets/*.gz, every tenth image (index % 10 == 9) held
out for validation. Like wgvae, each epoch takes full batches of a fresh shuffle (drop_last=True).
Prints nats per example, the unit pytorch/examples prints and wgvae's metrics.csv holds.
Not run by `cargo test`; it is the harness behind the comparison in the README.
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


def loss_terms(recon, x, mu, logvar):
    rec = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return rec, kl


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    train, val = load()
    model = VAE()
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
