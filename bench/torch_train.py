"""The train suite's workloads in PyTorch (CPU), for `cargo xtask bench --suite train --torch`.

Reads the training split that `xtask probe-dump` wrote (the same synthetic ratings the recsys
run trains on), trains one workload for a few epochs and prints one JSON line: the median
seconds per epoch after the first (warm-up) epoch, like the recsys probe.

Optional: needs `pip install torch numpy`. Each model mirrors the shapes, batch size, loss and
optimizer of the same workload in `xtask/src/bench.rs` (`bench_model`).
"""

import argparse
import json
import struct
import time

import numpy as np
import torch
from torch import nn


def read_split(path):
    """Header: magic, n_users, n_items, n (u32 each), then users u32, items u32, ratings f32."""
    with open(path, "rb") as f:
        magic, n_users, n_items, n = struct.unpack("<4I", f.read(16))
        if magic != 0x52435331:
            raise SystemExit(f"{path}: not a probe-dump file")
        users = np.frombuffer(f.read(4 * n), dtype="<u4").astype(np.int64)
        items = np.frombuffer(f.read(4 * n), dtype="<u4").astype(np.int64)
        ratings = np.frombuffer(f.read(4 * n), dtype="<f4").copy()
    return n_users, n_items, torch.from_numpy(users), torch.from_numpy(items), torch.from_numpy(ratings)


class Mf(nn.Module):
    """Dot product with user and item biases and the global mean (dim 64)."""

    def __init__(self, n_users, n_items, mean, dim=64):
        super().__init__()
        self.p = nn.Embedding(n_users, dim)
        self.q = nn.Embedding(n_items, dim)
        self.bu = nn.Embedding(n_users, 1)
        self.bi = nn.Embedding(n_items, 1)
        for e in (self.p, self.q):
            nn.init.normal_(e.weight, std=0.05)
        for e in (self.bu, self.bi):
            nn.init.zeros_(e.weight)
        self.mean = mean

    def forward(self, u, i):
        dot = (self.p(u) * self.q(i)).sum(1)
        return dot + self.bu(u).squeeze(1) + self.bi(i).squeeze(1) + self.mean


def scaled_sigmoid(z, lo, hi):
    return torch.sigmoid(z) * (hi - lo) + lo


class NeuMf(nn.Module):
    """GMF 32 + MLP 64-32-16 (32-wide MLP embeddings), one output unit, scaled sigmoid."""

    def __init__(self, n_users, n_items, lo, hi, gmf=32, layers=(64, 32, 16)):
        super().__init__()
        self.gu, self.gi = nn.Embedding(n_users, gmf), nn.Embedding(n_items, gmf)
        half = layers[0] // 2
        self.mu, self.mi = nn.Embedding(n_users, half), nn.Embedding(n_items, half)
        mlp = []
        for a, b in zip(layers, layers[1:]):
            mlp += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*mlp)
        self.out = nn.Linear(gmf + layers[-1], 1)
        self.lo, self.hi = lo, hi

    def forward(self, u, i):
        g = self.gu(u) * self.gi(i)
        m = self.mlp(torch.cat([self.mu(u), self.mi(i)], 1))
        return scaled_sigmoid(self.out(torch.cat([g, m], 1)).squeeze(1), self.lo, self.hi)


class RecNet(nn.Module):
    """Keras RecommenderNet: concatenated 50-wide embeddings, dense 10 (ReLU), scaled sigmoid."""

    def __init__(self, n_users, n_items, lo, hi, dim=50, hidden=10):
        super().__init__()
        self.u, self.i = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
        for e in (self.u, self.i):
            nn.init.kaiming_normal_(e.weight)
        self.in_drop, self.drop = nn.Dropout(0.05), nn.Dropout(0.5)
        self.h = nn.Linear(2 * dim, hidden)
        self.out = nn.Linear(hidden, 1)
        self.lo, self.hi = lo, hi

    def forward(self, u, i):
        x = self.in_drop(torch.cat([self.u(u), self.i(i)], 1))
        x = self.drop(torch.relu(self.h(x)))
        return scaled_sigmoid(self.out(x).squeeze(1), self.lo, self.hi)


class AutoRec(nn.Module):
    """U-AutoRec: a user's rating row -> sigmoid hidden 500 -> identity output."""

    def __init__(self, n_items, hidden=500):
        super().__init__()
        self.enc, self.dec = nn.Linear(n_items, hidden), nn.Linear(hidden, n_items)
        self.in_drop, self.drop = nn.Dropout(0.25), nn.Dropout(0.3)

    def forward(self, rows):
        return self.dec(self.drop(torch.sigmoid(self.enc(self.in_drop(rows)))))


class TwoTower(nn.Module):
    """Two 64-wide embedding towers scored by dot product."""

    def __init__(self, n_users, n_items, dim=64):
        super().__init__()
        self.u, self.i = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
        for e in (self.u, self.i):
            nn.init.uniform_(e.weight, -0.05, 0.05)


def pair_epoch(model, opt, users, items, ratings, batch, loss_fn):
    perm = torch.randperm(len(users))
    for s in range(0, len(users), batch):
        idx = perm[s : s + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, users[idx], items[idx], ratings[idx])
        loss.backward()
        opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--min", type=float, default=1.0)
    ap.add_argument("--max", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    n_users, n_items, users, items, ratings = read_split(a.data)
    mean = float(ratings.mean())
    mse = nn.functional.mse_loss

    if a.model == "mf":
        model, batch = Mf(n_users, n_items, mean), 40_960
        loss_fn = lambda m, u, i, r: mse(m(u, i), r)
    elif a.model == "neumf":
        model, batch = NeuMf(n_users, n_items, a.min, a.max), 40_960
        loss_fn = lambda m, u, i, r: mse(m(u, i), r)
    elif a.model == "recnet":
        model, batch = RecNet(n_users, n_items, a.min, a.max), 40_960
        loss_fn = lambda m, u, i, r: mse(m(u, i), r)
    elif a.model == "twotower":
        model, batch = TwoTower(n_users, n_items), 4_096

        def loss_fn(m, u, i, r):
            logits = m.u(u) @ m.i(i).T
            # In-batch softmax; another row's copy of the same item is not a negative.
            hits = (i[None, :] == i[:, None]) & ~torch.eye(len(i), dtype=torch.bool)
            logits = logits.masked_fill(hits, float("-inf"))
            return nn.functional.cross_entropy(logits, torch.arange(len(i)), reduction="sum")

    elif a.model == "autorec":
        model, batch = AutoRec(n_items), 256
    else:
        raise SystemExit(f"no torch workload for model {a.model!r}")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    times = []
    if a.model == "autorec":
        # Dense rating rows of the users with ratings, the masked MSE over observed entries.
        rated = torch.unique(users)
        rows = torch.zeros(n_users, n_items)
        rows[users, items] = ratings
        rows, mask = rows[rated], (rows[rated] != 0).float()
        for _ in range(a.epochs):
            t = time.perf_counter()
            perm = torch.randperm(len(rows))
            for s in range(0, len(rows), batch):
                idx = perm[s : s + batch]
                x, w = rows[idx], mask[idx]
                opt.zero_grad(set_to_none=True)
                loss = ((model(x) - x) ** 2 * w).sum() / w.sum().clamp(min=1)
                loss = loss + 100.0 / 2 * sum((p**2).sum() for n_, p in model.named_parameters() if "weight" in n_) / len(rows)
                loss.backward()
                opt.step()
            times.append(time.perf_counter() - t)
        samples = len(rows)
    else:
        for _ in range(a.epochs):
            t = time.perf_counter()
            pair_epoch(model, opt, users, items, ratings, batch, loss_fn)
            times.append(time.perf_counter() - t)
        samples = len(users)
    rest = sorted(times[1:]) or times
    epoch = rest[len(rest) // 2]
    print(json.dumps({
        "model": a.model, "framework": "pytorch", "torch": torch.__version__,
        "threads": torch.get_num_threads(), "batch_size": batch, "samples": samples,
        "epochs": a.epochs, "epoch_seconds": epoch, "first_epoch_seconds": times[0],
    }))


if __name__ == "__main__":
    main()
