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
loads strictly (`--checkpoint` with `--arch conv`). `--norm group` adds nn.GroupNorm after every
hidden convolution, before its ReLU (ModuleLists `enc_norm` and `dec_norm`), as wgvae's flag does.

    python3 tests/pytorch_vae.py --checkpoint RUN_DIR/model.safetensors --iw-samples 1 100 1000

loads a wgvae checkpoint into the same model with `load_state_dict(safetensors.torch.load_file(...))`
and evaluates it on the validation split instead: the negative ELBO and the importance-sampled
-log p(x) for each K, to set beside `wgvae eval`. `--save FILE` saves a trained model's state_dict,
which `wgvae eval --checkpoint FILE` (and every other checkpoint command) reads as it is.
    python3 tests/pytorch_vae.py --device cuda --compile --data /usr/share/datasets/fashion-mnist --epochs 3

trains on a GPU (eager, or with `--compile`: torch.compile), on an IDX folder as `wgvae train
--data DIR` reads it (t10k-* as validation when present, else every tenth image), with `--batch`
and `--hidden` as wgvae's flags: the speed comparison of ../shared/gpu.md. Batches are gathered on
the device and the loss totals stay there until the epoch ends, as in wgvae, so the seconds per
epoch measure training and not per-step host synchronisation.
Not run by `cargo test`; it is the harness behind the comparisons in docs/measurements.md.
"""
import argparse, gzip, time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def read_idx_images(folder, stem):
    """Images [n, pixels] in [0, 1] from folder/stem or folder/stem.gz, or None when neither exists."""
    for path, opener in ((folder / stem, open), (folder / (stem + ".gz"), gzip.open)):
        if path.exists():
            with opener(path, "rb") as f:
                raw = f.read()
            dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(raw[3])]
            offset = 4 + 4 * len(dims)
            pixels = int(np.prod(dims[1:]))
            return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(-1, pixels).astype(np.float32) / 255.0
    return None


def load(data=None):
    """(train, validation) as wgvae splits them: the embedded set (or an IDX folder without t10k-*)
    by index % 10 == 9, else t10k-* as validation."""
    folder = Path(data) if data else ASSETS
    images = read_idx_images(folder, "train-images-idx3-ubyte")
    if images is None:
        raise SystemExit(f"{folder}: no train-images-idx3-ubyte(.gz)")
    test = read_idx_images(folder, "t10k-images-idx3-ubyte") if data else None
    if test is not None:
        return torch.from_numpy(images.copy()), torch.from_numpy(test.copy())
    val = np.arange(len(images)) % 10 == 9
    return torch.from_numpy(images[~val].copy()), torch.from_numpy(images[val].copy())


class VAE(nn.Module):  # pytorch/examples vae/main.py
    def __init__(self, hidden=400, latent=20, pixels=784):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(pixels, hidden), nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.fc3, self.fc4 = nn.Linear(latent, hidden), nn.Linear(hidden, pixels)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


class ConvVAE(nn.Module):  # wgvae --arch conv (model.rs conv_paths)
    def __init__(self, channels, latent=20, side=28, norm_groups=None):
        super().__init__()
        widths = [1] + list(channels)
        self.enc = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(widths, widths[1:]))
        # --norm group: nn.GroupNorm after every hidden convolution, before its ReLU.
        norm = (lambda c: nn.GroupNorm(norm_groups, c)) if norm_groups else (lambda c: nn.Identity())
        self.enc_norm = nn.ModuleList(norm(b) for b in widths[1:])
        self.dec_norm = nn.ModuleList(norm(a) for a in reversed(widths[1:-1]))
        self.map = (widths[-1], side >> len(channels), side >> len(channels))
        deepest = self.map[0] * self.map[1] * self.map[2]
        self.fc21, self.fc22 = nn.Linear(deepest, latent), nn.Linear(deepest, latent)
        self.fc3 = nn.Linear(latent, deepest)
        self.dec = nn.ModuleList(nn.ConvTranspose2d(b, a, 4, 2, 1) for a, b in reversed(list(zip(widths, widths[1:]))))

    def encode(self, x):
        h = x.view(-1, 1, 28, 28)
        for conv, norm in zip(self.enc, self.enc_norm):
            h = F.relu(norm(conv(h)))
        h = h.flatten(1)
        return self.fc21(h), self.fc22(h)

    def logits(self, z):
        h = F.relu(self.fc3(z)).view(-1, *self.map)
        for i, deconv in enumerate(self.dec):
            h = deconv(h)
            if i + 1 < len(self.dec):
                h = F.relu(self.dec_norm[i](h))
        return h.flatten(1)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.logits(z)), mu, logvar


def make_model(a, pixels=784):
    groups = a.norm_groups if a.norm == "group" else None
    return ConvVAE(a.conv_channels, norm_groups=groups) if a.arch == "conv" else VAE(a.hidden, 20, pixels)


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
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--data", help="an IDX folder, as `wgvae train --data` [default: the embedded set]")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--checkpoint", help="evaluate this wgvae model.safetensors instead of training")
    p.add_argument("--iw-samples", type=int, nargs="+", default=[1, 100, 1000])
    p.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    p.add_argument("--conv-channels", type=int, nargs="+", default=[32, 64])
    p.add_argument("--norm", choices=["none", "group"], default="none", help="as wgvae's --norm (conv only)")
    p.add_argument("--norm-groups", type=int, default=8)
    p.add_argument("--save", help="after training, save the state_dict here (safetensors.torch.save_file)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.checkpoint:
        return evaluate_checkpoint(a)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch.cuda.is_available() is False")
    torch.manual_seed(a.seed)
    train, val = load(a.data)
    train, val = train.to(device), val.to(device)
    model = make_model(a, train.shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step_model = torch.compile(model) if a.compile else model
    batch = a.batch
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# torch {torch.__version__} on {name}, {'compiled' if a.compile else 'eager'}, batch {batch}, "
          f"hidden {a.hidden}, {len(train)} train / {len(val)} validation images", flush=True)
    print("epoch,train_loss,train_rec,train_kl,val_loss,val_rec,val_kl,seconds,images_per_second")
    for epoch in range(1, a.epochs + 1):
        model.train()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        order = torch.randperm(len(train), device=device)
        steps = len(train) // batch
        totals = torch.zeros(2, device=device)
        for s in range(steps):
            x = train[order[s * batch:(s + 1) * batch]]
            recon, mu, logvar = step_model(x)
            rec, kl = loss_terms(recon, x, mu, logvar)
            opt.zero_grad()
            (rec + kl).backward()
            opt.step()
            totals += torch.stack([rec.detach(), kl.detach()])
        tr, tk = totals.tolist()  # waits for the epoch's last step
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
    if a.save:
        from safetensors.torch import save_file
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, a.save)
        print(f"# saved the state_dict to {a.save}: `wgvae eval --checkpoint {a.save}` reads it")


if __name__ == "__main__":
    main()
