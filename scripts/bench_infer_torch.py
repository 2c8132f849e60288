#!/usr/bin/python3
"""PyTorch CPU inference twin of moodlsr's LSR networks, for the engine comparison in
docs/benchmarks.md: the same modules as scripts/bench_train_torch.py (random init; speed does not
depend on the weights), run in eval mode under torch.inference_mode(). Prints one JSON line per job
with the median seconds per call and per item.

Usage (normally called by scripts/bench-engines.ts):
  /usr/bin/python3 scripts/bench_infer_torch.py '<json: {"threads": 2, "runs": 3, "jobs": [...]}>'
A job: {"name", "preset", "network": "encoder"|"decoder"|"prior", "vqvae": {...}, "prior": {...},
"items", "batch"}.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_torch import VQVAE, PixelSNAIL  # noqa: E402


def make_call(job):
    torch.manual_seed(0)
    net, batch = job["network"], job["batch"]
    pos = torch.linspace(-0.5, 0.5, batch)
    if net in ("encoder", "decoder"):
        cfg = job["vqvae"]
        model = VQVAE(cfg).eval()
        s, levels = cfg["inputSize"], len(cfg["channels"]) - 1
        latent = s // 2**levels
        if net == "encoder":
            x = torch.randn(batch, cfg["inChannels"], s, s)

            def call():
                z = model.encode(x, pos)
                flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
                dist = (flat**2).sum(1, keepdim=True) - 2 * flat @ model.codebook.t() + (model.codebook**2).sum(1)[None]
                return dist.argmin(1)

            return call
        codes = torch.randint(0, cfg["codebookSize"], (batch, latent, latent))

        def call():
            zq = model.codebook[codes].permute(0, 3, 1, 2)
            return model.decode(zq, pos)

        return call
    cfg = job["prior"]
    model = PixelSNAIL(cfg).eval()
    codes = torch.randint(0, cfg["codebookSize"], (batch, cfg["height"], cfg["width"]))
    return lambda: model.logits(codes, pos)


def time_job(job, runs):
    call = make_call(job)
    calls = max(1, job["items"] // job["batch"])
    with torch.inference_mode():
        call()
        per_run = []
        for _ in range(runs):
            t0 = time.perf_counter()
            for _ in range(calls):
                call()
            per_run.append((time.perf_counter() - t0) / (calls * job["batch"]))
    per_run.sort()
    return {"name": job["name"], "runtime": "pytorch", "secondsPerItem": per_run[len(per_run) // 2], "runs": per_run, "loadavg": os.getloadavg()[0]}


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec.get("threads", 2))
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for job in spec["jobs"]:
        print(json.dumps(time_job(job, spec.get("runs", 3))), flush=True)


if __name__ == "__main__":
    main()
