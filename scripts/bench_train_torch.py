#!/usr/bin/python3
"""PyTorch CPU twin of moodlsr's VQ-VAE and PixelSNAIL prior (src/models/vqvae.ts, pixelsnail.ts),
for the training-throughput comparison in docs/benchmarks.md. Reads the model configs as JSON
(the same objects the TF.js presets produce), times Adam training steps with gradient value clipping
on random data, prints one JSON line per measurement.

Usage (normally called by scripts/bench-train.ts):
  /usr/bin/python3 scripts/bench_train_torch.py '<json: {"threads": 2, "jobs": [...]}>'
A job: {"name", "kind": "vqvae"|"pixelsnail", "config": {...}, "batch", "steps", "warmup"}.
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def groups_for(channels, max_groups):
    for g in range(min(max_groups, channels), 1, -1):
        if channels % g == 0:
            return g
    return 1


class GatedBlock(nn.Module):
    """norm → + pos·w+b → elu → conv1 → elu → dropout2d → conv2 (2C) → norm → GLU → + x."""

    def __init__(self, c, cfg):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups_for(c, cfg["normGroups"]), c)
        self.cond = nn.Linear(1, c) if cfg["condChannels"] == 1 else None
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, 2 * c, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(groups_for(2 * c, cfg["normGroups"]), 2 * c)
        self.drop = nn.Dropout2d(cfg["dropout"])

    def forward(self, x, pos):
        h = self.norm1(x)
        if self.cond is not None:
            h = h + self.cond(pos[:, None])[:, :, None, None]
        h = F.elu(self.conv1(F.elu(h)))
        h = self.norm2(self.conv2(self.drop(h)))
        return F.glu(h, dim=1) + x


class VQVAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        ch, levels, cond = cfg["channels"], len(cfg["channels"]) - 1, cfg["condChannels"]
        g = lambda c: nn.GroupNorm(groups_for(c, cfg["normGroups"]), c)
        self.stem = nn.Conv2d(cfg["inChannels"] + cond, ch[0], 7, padding=3, bias=False)
        self.stem_norm = g(ch[0])
        self.enc = nn.ModuleList()
        for l in range(levels):
            blocks = nn.ModuleList([GatedBlock(ch[l], cfg) for _ in range(cfg["blocksPerLevel"])])
            self.enc.append(nn.ModuleList([blocks, nn.Conv2d(ch[l], ch[l + 1], 5, stride=2, padding=2, bias=False), g(ch[l + 1])]))
        self.enc_out = GatedBlock(ch[levels], cfg)
        self.preq = nn.Conv2d(ch[levels], cfg["codeDim"], 1)
        k = cfg["codebookSize"]
        self.codebook = nn.Parameter(torch.empty(k, cfg["codeDim"]).uniform_(-1 / k, 1 / k))
        self.dec_stem = nn.Conv2d(cfg["codeDim"] + cond, ch[levels], 3, padding=1, bias=False)
        self.dec_stem_norm = g(ch[levels])
        self.dec = nn.ModuleList()
        for l in range(levels, 0, -1):
            blocks = nn.ModuleList([GatedBlock(ch[l], cfg) for _ in range(cfg["blocksPerLevel"])])
            if cfg["upsample"] == "nearest-conv":
                up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch[l], ch[l - 1], 3, padding=1, bias=False))
            else:
                up = nn.ConvTranspose2d(ch[l], ch[l - 1], 6, stride=2, padding=2, bias=False)
            self.dec.append(nn.ModuleList([blocks, up, g(ch[l - 1])]))
        self.dec_out = GatedBlock(ch[0], cfg)
        self.out = nn.Conv2d(ch[0], cfg["inChannels"], 1)

    def plane(self, x, pos):
        if self.cfg["condChannels"] == 0:
            return x
        return torch.cat([x, pos[:, None, None, None].expand(-1, 1, x.shape[2], x.shape[3])], 1)

    def encode(self, x, pos):
        h = self.stem_norm(self.stem(self.plane(x, pos)))
        for blocks, down, norm in self.enc:
            for b in blocks:
                h = b(h, pos)
            h = norm(down(h))
        return self.preq(self.enc_out(h, pos))

    def decode(self, zq, pos):
        h = self.dec_stem_norm(self.dec_stem(self.plane(zq, pos)))
        for blocks, up, norm in self.dec:
            for b in blocks:
                h = b(h, pos)
            h = norm(up(h))
        return self.out(F.elu(self.dec_out(h, pos)))

    def forward(self, x, pos):
        z = self.encode(x, pos)
        b_, d, hh, ww = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        dist = (flat.detach() ** 2).sum(1, keepdim=True) - 2 * flat.detach() @ self.codebook.detach().t() + (self.codebook.detach() ** 2).sum(1)[None]
        onehot = F.one_hot(dist.argmin(1), self.cfg["codebookSize"]).float()
        codes = (onehot @ self.codebook).reshape(b_, hh, ww, d).permute(0, 3, 1, 2)
        codebook_loss = F.mse_loss(codes, z.detach())
        commit = F.mse_loss(z, codes.detach())
        zq = z + (codes - z).detach()
        xhat = self.decode(zq, pos)
        return F.l1_loss(xhat, x) + codebook_loss + self.cfg["commitmentWeight"] * commit


def causal_pad(x, kind):
    # (left, right, top, bottom) for F.pad; down: 2×3 rows i-1..i; downright: 2×2.
    return F.pad(x, {"down": (1, 1, 1, 0), "downright": (1, 0, 1, 0), "pointwise": (0, 0, 0, 0)}[kind])


KERNEL = {"down": (2, 3), "downright": (2, 2), "pointwise": (1, 1)}


class GatedCausal(nn.Module):
    def __init__(self, kind, c, aux, cfg):
        super().__init__()
        self.kind = kind
        self.conv1 = nn.Conv2d(c, c, KERNEL[kind])
        self.aux = nn.Conv2d(aux, c, 1, bias=False) if aux > 0 else None
        self.cond = nn.Linear(1, c) if cfg["condChannels"] == 1 else None
        self.conv2 = nn.Conv2d(c, 2 * c, KERNEL[kind])
        self.drop = nn.Dropout2d(cfg["dropout"])

    def forward(self, x, pos, aux=None):
        h = self.conv1(causal_pad(F.elu(x), self.kind))
        if aux is not None:
            h = h + self.aux(F.elu(aux))
        if self.cond is not None:
            h = h + self.cond(pos[:, None])[:, :, None, None]
        h = self.drop(F.elu(h))
        return F.glu(self.conv2(causal_pad(h, self.kind)), dim=1) + x


def shift_down(x):
    return F.pad(x[:, :, :-1, :], (0, 0, 1, 0))


def shift_right(x):
    return F.pad(x[:, :, :, :-1], (1, 0, 0, 0))


class PixelSNAIL(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        k, c, h, w = cfg["codebookSize"], cfg["channels"], cfg["height"], cfg["width"]
        self.in_u = nn.Conv2d(k, c, (2, 3))
        self.in_lv = nn.Conv2d(k, c, (1, 3))
        self.in_lh = nn.Conv2d(k, c, (2, 1), bias=False)
        a = cfg["attention"]
        self.blocks = nn.ModuleList()
        for _ in range(cfg["blocks"]):
            block = nn.Module()
            block.res = nn.ModuleList(
                [nn.ModuleList([GatedCausal("down", c, 0, cfg), GatedCausal("downright", c, c, cfg)]) for _ in range(cfg["resBlocksPerBlock"])]
            )
            if a is not None:
                d = a["downsample"]
                block.kv = nn.Conv2d(k + c + 2, c, d, stride=d)
                block.key = nn.Conv2d(c, a["keyChannels"], 1)
                block.value = nn.Conv2d(c, a["valueChannels"], 1)
                block.q = nn.Conv2d(c + 2, c, 1)
                block.query = nn.Conv2d(c, a["keyChannels"], 1)
                block.out = GatedCausal("pointwise", c, a["valueChannels"], cfg)
            self.blocks.append(block)
        self.out = nn.Conv2d(c, k, 1)
        ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        self.register_buffer("bg", torch.stack([(ii - h / 2) / h, (jj - w / 2) / w])[None].float())
        if a is not None:
            d = a["downsample"]
            p = torch.arange(h * w)[:, None]
            qi, qj = torch.meshgrid(torch.arange(h // d), torch.arange(w // d), indexing="ij")
            last = ((qi * d + d - 1) * w + qj * d + d - 1).reshape(1, -1)
            self.register_buffer("mask", (last < p).float()[None])

    def logits(self, codes, pos):
        cfg, a = self.cfg, self.cfg["attention"]
        x = F.one_hot(codes, cfg["codebookSize"]).permute(0, 3, 1, 2).float()
        b = x.shape[0]
        u = shift_down(self.in_u(causal_pad(x, "down")))
        l = shift_down(self.in_lv(F.pad(x, (1, 1, 0, 0)))) + shift_right(self.in_lh(F.pad(x, (0, 0, 1, 0))))
        bg = self.bg.expand(b, -1, -1, -1)
        for block in self.blocks:
            for ru, rl in block.res:
                u = ru(u, pos)
                l = rl(l, pos, u)
            if a is not None:
                kv = F.elu(block.kv(torch.cat([x, l, bg], 1)))
                key = block.key(kv).flatten(2).transpose(1, 2)
                value = block.value(kv).flatten(2).transpose(1, 2)
                query = block.query(F.elu(block.q(torch.cat([l, bg], 1)))).flatten(2).transpose(1, 2)
                scores = query @ key.transpose(1, 2) / math.sqrt(a["keyChannels"])
                weights = torch.softmax(scores + (1 - self.mask) * -1e9, -1) * self.mask
                att = (weights @ value).transpose(1, 2).reshape(b, a["valueChannels"], cfg["height"], cfg["width"])
                l = block.out(l, pos, att)
        return self.out(F.elu(l))

    def forward(self, codes, pos):
        return F.cross_entropy(self.logits(codes, pos), codes)


def time_job(job):
    cfg, batch = job["config"], job["batch"]
    torch.manual_seed(0)
    if job["kind"] == "vqvae":
        model = VQVAE(cfg)
        s = cfg["inputSize"]
        inputs = (torch.randn(batch, cfg["inChannels"], s, s), torch.linspace(-0.5, 0.5, batch))
    else:
        model = PixelSNAIL(cfg)
        inputs = (torch.randint(0, cfg["codebookSize"], (batch, cfg["height"], cfg["width"])), torch.linspace(-0.5, 0.5, batch))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for i in range(job["warmup"] + job["steps"]):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = model(*inputs)
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
        opt.step()
        if i >= job["warmup"]:
            times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    params = sum(p.numel() for p in model.parameters())
    return {"name": job["name"], "runtime": "pytorch", "batch": batch, "secondsPerStep": median, "samplesPerSecond": batch / median, "params": params}


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec.get("threads", 2))
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for job in spec["jobs"]:
        print(json.dumps(time_job(job)), flush=True)


if __name__ == "__main__":
    main()
