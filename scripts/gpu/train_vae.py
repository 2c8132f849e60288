#!/usr/bin/env python3
"""Trainer of the VAE baseline (Zimmerer et al.) on the project's own training graph, interpreted by torch,
on a GPU or on CPU: the companion of ./train_lsr.py, with the same data, schedule and optimiser.

The graph (export-net.ts --kind vae; src/methods/vae/onnx-train-graph.ts) takes the images, their slice
positions, channel-dropout masks and the reparameterisation noise ε, and gives loss = mean over the batch
of (KL + Σ (x − x̂)² / 2σ²) per pixel, with rec = mean |x̂ − x| and kl beside it. Around it, as the CPU
trainer (src/methods/vae/trainer.ts): the VQ-VAE trainer's sampler with the paper's augmentation over a
fresh population (scripts/gpu/lsr-batches.ts), ε ~ N(0, 1) from a seeded generator, dropout masks
0 or 1/(1 − rate), Adam with the element-wise clip 1, linear warm-up then a cosine over the wall time
left. Held out: the 8 unaugmented slices per held-out volume, z = μ (ε = 0) and dropout off, as the CPU
trainer evaluates; the best held-out loss is kept, and the brain-only L1 (recFg) is logged beside it.

  python3 scripts/gpu/train_vae.py --export .gpu/vae --batches-js .gpu/lsr-batches.mjs --src ch2bet.nii.gz \
      --work /tmp/pop --out OUT --minutes 5 --producers 14
  node dist/scripts/gpu/export-net.js import --export .gpu/vae --flat OUT/vae-best.f32 --record OUT/vae-record.json --out W
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import check, load_export  # noqa: E402
from train_lsr import population_batches, run_record, to_device  # noqa: E402
from trainer_common import Schedule, adam_step, add_population_args, dropout_sites, log, masks  # noqa: E402


def value_of_difference(interp):
    """x − x̂: the Sub that reads the image (for the brain-only L1; only its magnitude is used)."""
    return next(outs[0] for op, name, ins, outs, at in interp.nodes if op == 'Sub' and len(ins) == 2 and 'image' in ins)


def train_vae(args, net, holdout, train, device):
    interp, params, meta, start = net
    cfg = meta['config']
    size, latent, background = cfg['inputSize'], cfg['latentDim'], meta['background']
    sites = dropout_sites(args.export)
    diff_name = value_of_difference(interp)
    flat = torch.from_numpy(start.copy()).to(device).requires_grad_(True)
    opt = torch.optim.Adam([flat], lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator(device='cpu').manual_seed(args.torch_seed)

    def evaluate():
        sums, fg_abs, fg_n = {}, 0.0, 0.0
        with torch.no_grad():
            pf = params.feeds(flat)
            for b in holdout:
                n = b['position'].shape[0]
                out = interp.run({**pf, **b, 'noise': torch.zeros(n, latent, device=device), **masks(sites, n, 0, device, False)}, extra=[diff_name])
                for k in ('loss', 'rec', 'kl', 'recNll'):
                    sums[k] = sums.get(k, 0.0) + float(out[k])
                fg = (b['image'] != background).float()
                fg_abs += float((out[diff_name].abs() * fg).sum())
                fg_n += float(fg.sum())
        res = {k: v / len(holdout) for k, v in sums.items()}
        res['recFg'] = fg_abs / max(fg_n, 1.0)
        return res

    sched = Schedule(args.lr, args.final_ratio, args.warmup, args.minutes * 60, args.max_steps)
    h0 = evaluate()
    history = [{'step': 0, 'seconds': 0.0, 'slices': 0, 'holdout': h0}]
    best = {'loss': h0['loss'], 'step': 0, 'weights': start.copy()}
    log(f'vae step 0: held-out {json.dumps(h0)}')
    per_step = args.batch // args.chunk
    step, seen, wait = 0, 0, 0.0
    sums, n_sums = {}, 0
    t0 = time.time()
    while True:
        lr = sched.at(step, time.time() - t0, log)
        if lr is None:
            break
        tw = time.time()
        feeds = to_device(train.take(per_step), size, device)
        wait += time.time() - tw
        n = feeds['position'].shape[0]
        noise = torch.randn(n, latent, generator=gen).to(device)
        out = interp.run({**params.feeds(flat), **feeds, 'noise': noise, **masks(sites, n, cfg['dropout'], device, True)})
        adam_step(opt, flat, out['loss'], lr)
        step += 1
        seen += n
        for k in ('loss', 'rec', 'kl'):
            sums[k] = sums.get(k, 0.0) + float(out[k].detach())
        n_sums += 1
        if step % args.eval_every == 0:
            h = evaluate()
            tr = {k: v / n_sums for k, v in sums.items()}
            sums, n_sums = {}, 0
            rec = {'step': step, 'seconds': round(time.time() - t0, 1), 'slices': seen, 'lr': lr, 'train': tr, 'holdout': h, 'dataWaitSeconds': round(wait, 1)}
            history.append(rec)
            if h['loss'] < best['loss']:
                best = {'loss': h['loss'], 'step': step, 'weights': flat.detach().cpu().numpy().copy()}
                best['weights'].tofile(os.path.join(args.out, 'vae-best.f32'))
            log(f'vae step {step} ({rec["seconds"]} s, {seen} slices, lr {lr:.2e}, wait {wait:.0f} s): train loss {tr["loss"]:.4f} '
                f'held-out loss {h["loss"]:.4f} rec {h["rec"]:.4f} kl {h["kl"]:.2f} brain L1 {h["recFg"]:.4f}')
    wall = time.time() - t0
    best['weights'].tofile(os.path.join(args.out, 'vae-best.f32'))
    record = {'kind': 'vae', 'steps': step, 'batch': args.batch, 'slices': seen, 'trainSeconds': round(wall, 1),
              'slicesPerSecond': round(seen / max(wall, 1e-9), 1), 'dataWaitSeconds': round(wait, 1),
              'adam': {'lr': args.lr, 'lrFinal': args.lr * args.final_ratio, 'warmup': args.warmup, 'schedule': 'linear warm-up, cosine over the wall time left'},
              'clip': 1, 'dropout': cfg['dropout'], 'start': meta.get('start'), 'selectedBy': 'held-out loss (z = μ, dropout off)',
              'bestStep': best['step'], 'bestHoldoutLoss': best['loss'], 'history': history}
    log(f'vae done: {step} steps, {seen} slices in {wall:.0f} s, best step {best["step"]} held-out loss {best["loss"]:.4f}')
    return record


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--export', required=True, help='export-net.ts --kind vae folder')
    ap.add_argument('--out', required=True)
    add_population_args(ap)
    ap.add_argument('--augment', default='paper', choices=['paper', 'none'])
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=5e-4)
    ap.add_argument('--final-ratio', type=float, default=0.02)
    ap.add_argument('--warmup', type=int, default=200)
    ap.add_argument('--minutes', type=float, default=5.0)
    ap.add_argument('--max-steps', type=int, default=0, help='tests; 0 = what the minutes fit')
    ap.add_argument('--eval-every', type=int, default=250)
    ap.add_argument('--seed', default='vae-gpu0')
    ap.add_argument('--torch-seed', type=int, default=0)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.torch_seed)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    net = load_export(args.export, device)
    parity = {'vae': check(args.export, device, loaded=net)}
    if max(parity.values()) > 1e-3:
        raise SystemExit(f'parity check failed: {parity}')
    size = net[2]['config']['inputSize']
    train, holdout = population_batches(args, size, device, t_start)
    common = run_record(args, 'scripts/gpu/train_vae.py', parity, device)
    try:
        record = train_vae(args, net, holdout, train, device)
        json.dump({**common, **record}, open(os.path.join(args.out, 'vae-record.json'), 'w'), indent=1)
    finally:
        train.close()
    log(f'all done after {time.time() - t_start:.0f} s')


if __name__ == '__main__':
    main()
