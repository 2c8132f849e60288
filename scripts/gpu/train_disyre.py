#!/usr/bin/env python3
"""GPU trainer of the DISYRE U-Net: the project's own training graph on PyTorch/CUDA.

The network is not re-implemented here. scripts/gpu/export-disyre.ts exports the exact graph the
ONNX Runtime engine trains (train.onnx: loss = MSE + w*BCE, parameters as inputs, with their index maps
into the flat weights); ./onnx_torch.py interprets that graph with torch operators (autograd gives the
gradient), and this script first proves the interpretation: forward outputs against ONNX Runtime's and
the flat gradient against the project's own backward graph, on a fixed batch (check.*). Batches come
from Node processes running the trainer's own sampler (scripts/gpu/disyre-batches.ts: population
variants, slice stacks, corruptions), so the data are what the CPU trainer draws, only more of them. Adam and the element-wise gradient clip match the CPU loop
(src/train/loop.ts); the flat weights come back in the CPU layout (import with export-disyre.ts).

  python3 scripts/gpu/train_disyre.py --export .gpu/disyre --batches-js .gpu/batches.mjs --node NODE \
      --src ch2bet.nii.gz --work /tmp/pop --out OUT --minutes 6 --producers 14 --volumes 96
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import check, load_export  # noqa: E402  (the shared interpreter beside this script)
from producers import Producers  # noqa: E402
from trainer_common import Schedule, adam_step  # noqa: E402


def batch_feeds(image, target, mask, cond, size):
    n = cond.shape[0]
    return {'image': image.reshape(n, size, size, 1), 'target': target.reshape(n, size, size, 1),
            'mask': mask.reshape(n, size, size, 1), 'cond': cond}


def disyre_producers(args, size, embed, seed_prefix, index_sets, mode, batches=0):
    """Node processes running the DISYRE sampler (disyre-batches.ts); a record is `chunk` samples."""
    s2 = args.chunk * size * size

    def parse(buf):
        half = np.frombuffer(buf, dtype=np.float16, count=3 * s2)
        cond = np.frombuffer(buf, dtype=np.float32, offset=6 * s2, count=args.chunk * 2 * embed)
        return half.reshape(3, s2), cond.reshape(args.chunk, 2 * embed)

    commands = [[args.node, args.batches_js, '--src', args.src, '--work', os.path.join(args.work, f'{mode}-{k}'),
                 '--pop-seed', str(args.pop_seed), '--indices', ','.join(map(str, indices)), '--seed', f'{seed_prefix}:{k}',
                 '--region', args.region, '--batch', str(args.chunk), '--size', str(size), '--embed', str(embed), '--mode', mode,
                 '--batches', str(batches)] for k, indices in enumerate(index_sets)]
    return Producers(commands, 6 * s2 + args.chunk * 2 * embed * 4, parse)


def to_device(recs, size, device):
    half = torch.from_numpy(np.stack([r[0] for r in recs], axis=1)).to(device, non_blocking=True).float()
    cond = torch.from_numpy(np.concatenate([r[1] for r in recs])).to(device, non_blocking=True)
    n = cond.shape[0]
    return batch_feeds(half[0].reshape(n, -1), half[1].reshape(n, -1), half[2].reshape(n, -1), cond, size)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--export', required=True)
    ap.add_argument('--batches-js', required=True)
    ap.add_argument('--node', default='node')
    ap.add_argument('--src', required=True)
    ap.add_argument('--region', default='brain', choices=['brain', 'abdom'])
    ap.add_argument('--work', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--pop-seed', type=int, default=7)
    ap.add_argument('--volumes', type=int, default=96)
    ap.add_argument('--holdout-volumes', type=int, default=8)
    ap.add_argument('--holdout-batches', type=int, default=16)
    ap.add_argument('--producers', type=int, default=14)
    ap.add_argument('--chunk', type=int, default=16, help='samples per producer record')
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--lr-final', type=float, default=2e-5)
    ap.add_argument('--warmup', type=int, default=200)
    ap.add_argument('--minutes', type=float, default=6.0)
    ap.add_argument('--max-steps', type=int, default=0)
    ap.add_argument('--eval-every', type=int, default=250)
    ap.add_argument('--seed', default='gpu0')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = ap.parse_args()
    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    interp, params, meta, start = loaded = load_export(args.export, device)
    worst = check(args.export, device, loaded=loaded)
    if worst > 1e-3:
        raise SystemExit(f'parity check failed: relative error {worst:.2e}')
    size, embed = meta['config']['inputSize'], meta['config']['embedDim']
    flat = torch.from_numpy(start.copy()).to(device).requires_grad_(True)

    train_ids = list(range(args.volumes))
    holdout_ids = list(range(args.volumes, args.volumes + args.holdout_volumes))
    shards = [train_ids[k::args.producers] for k in range(args.producers)]
    train = disyre_producers(args, size, embed, f'{args.seed}:train', shards, 'train')
    held = disyre_producers(args, size, embed, f'{args.seed}:holdout', [holdout_ids], 'holdout', args.holdout_batches)
    holdout = [to_device(held.take(1), size, device) for _ in range(args.holdout_batches)]
    t_data = time.time()
    print(f'data ready after {t_data - t_start:.1f} s: {len(shards)} producers over {args.volumes} volumes, '
          f'{len(holdout)} held-out batches of {args.chunk} from {args.holdout_volumes} volumes', flush=True)

    opt = torch.optim.Adam([flat], lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    per_step = args.batch // args.chunk
    sched = Schedule(args.lr, args.lr_final / args.lr, args.warmup, args.minutes * 60, args.max_steps)
    history = []
    best = {'loss': math.inf, 'step': 0}
    step = 0
    seen = 0
    wait = 0.0

    def evaluate():
        sums = {}
        with torch.no_grad():
            pf = params.feeds(flat)
            for b in holdout:
                out = interp.run({**pf, **b})
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
        return {k: v / len(holdout) for k, v in sums.items()}

    h0 = evaluate()
    history.append({'step': 0, 'seconds': 0.0, 'slices': 0, 'holdout': h0})
    best = {'loss': h0['loss'], 'step': 0}
    start.tofile(os.path.join(args.out, 'best.f32'))
    print(f'step 0: held-out {json.dumps(h0)}', flush=True)
    t_train = time.time()
    train_sums, train_n = {}, 0
    while True:
        lr = sched.at(step, time.time() - t_train, lambda line: print(line, flush=True))
        if lr is None:
            break
        t0 = time.time()
        recs = train.take(per_step)
        wait += time.time() - t0
        feeds = to_device(recs, size, device)
        out = interp.run({**params.feeds(flat), **feeds})
        adam_step(opt, flat, out['loss'], lr)
        step += 1
        seen += args.batch
        for k, v in out.items():
            train_sums[k] = train_sums.get(k, 0.0) + float(v.detach())
        train_n += 1
        if step % args.eval_every == 0:
            h = evaluate()
            tr = {k: v / train_n for k, v in train_sums.items()}
            train_sums, train_n = {}, 0
            rec = {'step': step, 'seconds': round(time.time() - t_train, 1), 'slices': seen, 'lr': lr, 'train': tr, 'holdout': h,
                   'dataWaitSeconds': round(wait, 1)}
            history.append(rec)
            if h['loss'] < best['loss']:
                best = {'loss': h['loss'], 'step': step}
                flat.detach().cpu().numpy().tofile(os.path.join(args.out, 'best.f32'))
            print(f'step {step} ({rec["seconds"]} s, {seen} slices, lr {lr:.2e}, data wait {wait:.0f} s): '
                  f'train loss {tr["loss"]:.5f} held-out loss {h["loss"]:.5f} rec {h["rec"]:.5f} bce {h.get("bce", 0):.4f}', flush=True)
            json.dump({'history': history}, open(os.path.join(args.out, 'curve.json'), 'w'))
    train.close()
    held.close()
    flat.detach().cpu().numpy().tofile(os.path.join(args.out, 'last.f32'))
    wall = time.time() - t_train
    record = {
        'kind': 'disyre', 'engine': 'torch-gpu-interpreter', 'script': 'scripts/gpu/train_disyre.py',
        'argv': sys.argv[1:], 'device': torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu', 'torch': torch.__version__,
        'start': meta.get('start'), 'parityRelativeError': worst, 'steps': step, 'batch': args.batch, 'slices': seen,
        'trainSeconds': round(wall, 1), 'setupSeconds': round(t_train - t_start, 1), 'slicesPerSecond': round(seen / max(wall, 1e-9), 1),
        'dataWaitSeconds': round(wait, 1), 'adam': {'lr': args.lr, 'lrFinal': args.lr_final, 'warmup': args.warmup, 'schedule': 'linear warm-up, cosine over the wall time left'},
        'clip': 1, 'region': args.region, 'population': {'seed': args.pop_seed, 'train': args.volumes, 'holdout': args.holdout_volumes},
        'bestStep': best['step'], 'bestHoldoutLoss': best['loss'], 'history': history,
    }
    json.dump(record, open(os.path.join(args.out, 'record.json'), 'w'), indent=1)
    print(f'done: {step} steps, {seen} slices in {wall:.0f} s ({seen / max(wall, 1e-9):.0f}/s), best step {best["step"]} '
          f'held-out {best["loss"]:.5f}', flush=True)


if __name__ == '__main__':
    main()
