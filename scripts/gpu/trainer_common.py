"""What every trainer in scripts/gpu shares around its interpreted graph: the learning-rate schedule, the
population options of the batch producers, the Adam step with the element-wise gradient clip of the CPU
loop (src/train/loop.ts), the dropout masks fed as inputs (src/train/onnx-dropout.ts), and the log line."""
import math
import os

import onnx
import torch


def log(line):
    print(line, flush=True)


def add_population_args(ap):
    """The options of the normal population the batch producers (lsr-batches.mjs) make and slice."""
    ap.add_argument('--batches-js', required=True)
    ap.add_argument('--node', default='node')
    ap.add_argument('--src', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--region', default='brain', choices=['brain', 'abdom'], help='brain: variants of --src; abdom: phantoms (--src unused)')
    ap.add_argument('--pop-seed', type=int, default=7)
    ap.add_argument('--volumes', type=int, default=96)
    ap.add_argument('--holdout-volumes', type=int, default=8)
    ap.add_argument('--producers', type=int, default=14)
    ap.add_argument('--chunk', type=int, default=16, help='slices per producer record')


def dropout_sites(export_dir):
    """(input name, per-sample shape) of every dropout mask input of a training graph."""
    model = onnx.load(os.path.join(export_dir, 'train.onnx'))
    return [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim][1:]) for i in model.graph.input if i.name.startswith('dropout/')]


def masks(sites, n, rate, device, training):
    if not training or rate <= 0:
        return {name: torch.ones([n] + shape, device=device) for name, shape in sites}
    keep = 1.0 - rate
    return {name: torch.bernoulli(torch.full([n] + shape, keep, device=device)) / keep for name, shape in sites}


class Schedule:
    """Linear warm-up to `lr` over `warmup` steps, then a cosine to lr·final over the wall time left in
    `seconds` (or over `max_steps` steps when given: tests). Time, not a step count from a measured rate:
    on a shared machine the rate changes as other work starts and stops, and a schedule fixed from the
    first minute's rate either ends early or never anneals."""

    def __init__(self, lr, final_ratio, warmup, seconds, max_steps=0):
        self.lr, self.final, self.warmup, self.seconds = lr, lr * final_ratio, warmup, seconds
        self.max_steps = max_steps or None
        self.t_warm = None

    def at(self, step, elapsed, log):
        if (self.max_steps is not None and step >= self.max_steps) or elapsed > self.seconds:
            return None
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.t_warm is None:
            self.t_warm = elapsed
            log(f'warm-up done after {elapsed:.0f} s ({step / max(elapsed, 1e-9):.2f} steps/s); cosine over the {self.seconds - elapsed:.0f} s left')
        if self.max_steps is not None:
            frac = (step - self.warmup) / max(1, self.max_steps - self.warmup)
        else:
            frac = (elapsed - self.t_warm) / max(1e-9, self.seconds - self.t_warm)
        return self.final + 0.5 * (self.lr - self.final) * (1 + math.cos(math.pi * min(1.0, frac)))


def adam_step(opt, flat, loss, lr):
    for g in opt.param_groups:
        g['lr'] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():
        flat.grad.clamp_(-1.0, 1.0)
    opt.step()
