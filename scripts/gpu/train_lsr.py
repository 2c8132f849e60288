#!/usr/bin/env python3
"""GPU trainer of LSR's two networks: the VQ-VAE, then the PixelSNAIL prior on its codes; or of LSGS's
transformer on the codes of its (frozen) VQ-VAE, when --prior-export holds a transformer.

As scripts/gpu/train_disyre.py, nothing is re-implemented: export-net.ts exports the exact training
graphs the ONNX Runtime engine trains (VQ-VAE: L1 + codebook + commitment with the straight-through
estimator; prior: mean NLL per code), ./onnx_torch.py interprets them with torch operators and first
proves the interpretation against ONNX Runtime and the project's backward graph. What the CPU trainers do
around the graph is done here the same way:
- batches: the VQ-VAE trainer's own sampler with the paper's augmentation, from Node processes
  (scripts/gpu/lsr-batches.ts) over a fresh normal population; held-out = 8 evenly spread unaugmented
  slices of each held-out volume (src/train/holdout-slices.ts);
- dropout: one channel mask per gated block, 0 or 1/(1 − rate) (src/train/onnx-dropout.ts);
- dead codes: a code no training position chose since the last re-seed gets an encoder output z of the
  latest batch and zeroed Adam moments (src/train/vqvae-trainer.ts reseedDeadCodes);
- the prior sees the codes of freshly augmented slices, encoded by the trained VQ-VAE, every step;
- the LSGS transformer learns to repair tampered maps (src/methods/lsgs/tamper.ts): in every map exactly
  round(fraction · cells) positions get one of the other K − 1 codes, and the loss weighs tampered positions
  (1 − β)/m and the rest β/(N − m); the held-out maps are tampered once, with a fixed seed;
- Adam with the element-wise clip 1; lr: linear warm-up, then cosine to lr·final-ratio over the wall time
  left in each phase's budget (./trainer_common.py); the best held-out weights of each phase are kept (by the brain-only metrics below).
Held-out metrics over the brain only: the VQ-VAE's L1 over foreground pixels (recFg), the prior's NLL over
codes whose patch holds foreground (nllFg); the transformer is kept by its held-out repair loss, and its
NLL of the untampered foreground codes (what LSGS scores) is logged beside it.

  python3 scripts/gpu/train_lsr.py --vq-export .gpu/lsr-vq --prior-export .gpu/lsr-prior --batches-js .gpu/lsr-batches.mjs \
      --node NODE --src ch2bet.nii.gz --work /tmp/pop --out OUT --vq-minutes 4.5 --prior-minutes 3 --producers 14
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
from onnx_torch import check, load_export  # noqa: E402
from producers import Producers  # noqa: E402
from trainer_common import Schedule, adam_step, add_population_args, dropout_sites, log, masks  # noqa: E402


def lsr_producers(args, size, seed_prefix, index_sets, mode):
    s2 = args.chunk * size * size

    def parse(buf):
        images = np.frombuffer(buf, dtype=np.float16, count=s2)
        positions = np.frombuffer(buf, dtype=np.float32, offset=2 * s2, count=args.chunk)
        return images, positions

    commands = [[args.node, args.batches_js, '--src', args.src, '--work', os.path.join(args.work, f'{mode}-{k}'),
                 '--pop-seed', str(args.pop_seed), '--indices', ','.join(map(str, indices)), '--seed', f'{seed_prefix}:{k}',
                 '--batch', str(args.chunk), '--size', str(size), '--mode', mode, '--augment', args.augment, '--region', args.region] for k, indices in enumerate(index_sets)]
    return Producers(commands, 2 * s2 + 4 * args.chunk, parse)


def to_device(recs, size, device):
    images = torch.from_numpy(np.concatenate([r[0] for r in recs])).to(device, non_blocking=True).float()
    positions = torch.from_numpy(np.concatenate([r[1] for r in recs]).copy()).to(device, non_blocking=True)
    n = positions.shape[0]
    return {'image': images.reshape(n, size, size, 1), 'position': positions}


def population_batches(args, size, device, t_start):
    """The training producers (one shard of the population's volumes each) and the held-out batches, as
    every trainer of this folder over slices of population `args.pop_seed` draws them."""
    train_ids = list(range(args.volumes))
    holdout_ids = list(range(args.volumes, args.volumes + args.holdout_volumes))
    shards = [train_ids[k::args.producers] for k in range(args.producers)]
    train = lsr_producers(args, size, f'{args.seed}:train', shards, 'train')
    held = lsr_producers(args, size, f'{args.seed}:holdout', [holdout_ids[k::2] for k in range(2)], 'holdout')
    holdout = [to_device([r], size, device) for r in held.drain()]
    log(f'data ready after {time.time() - t_start:.1f} s: {len(shards)} producers over {args.volumes} volumes, '
        f'{len(holdout)} held-out batches of {args.chunk} slices from {args.holdout_volumes} volumes')
    return train, holdout


def run_record(args, script, parity, device):
    """The fields every training record of these trainers starts with."""
    return {'engine': 'torch-gpu-interpreter', 'script': script, 'argv': sys.argv[1:],
            'device': torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu', 'torch': torch.__version__,
            'parityRelativeError': parity, 'population': {'region': args.region, 'seed': args.pop_seed, 'train': args.volumes, 'holdout': args.holdout_volumes},
            'sliceRule': 'every axial plane with foreground (foreground)', 'augment': args.augment}


def value_names(interp):
    """Names of two intermediate values of the VQ-VAE graph: the encoder outputs z [N, D] (the input of the
    first stop-gradient that is not a parameter) and x̂ − x (the Sub that reads the image)."""
    params = set(interp.inputs_needed())
    z = next(ins[0] for op, name, ins, outs, at in interp.nodes if op == 'Identity' and name.startswith('stop_gradient') and ins[0] not in params)
    diff = next(outs[0] for op, name, ins, outs, at in interp.nodes if op == 'Sub' and len(ins) == 2 and ins[1] == 'image')
    return z, diff


def train_vqvae(args, vq, holdout, train, device):
    interp, params, meta, start = vq
    cfg = meta['config']
    size, k_codes, d = cfg['inputSize'], cfg['codebookSize'], cfg['codeDim']
    background = meta['background']
    sites = dropout_sites(args.vq_export)
    z_name, diff_name = value_names(interp)
    book = next(e for e in meta['layout'] if e['name'] == 'codebook.E')
    flat = torch.from_numpy(start.copy()).to(device).requires_grad_(True)
    opt = torch.optim.Adam([flat], lr=args.vq_lr, betas=(0.9, 0.999), eps=1e-8)
    rng = torch.Generator(device='cpu').manual_seed(args.torch_seed)

    def evaluate():
        sums, fg_abs, fg_n = {}, 0.0, 0.0
        with torch.no_grad():
            pf = params.feeds(flat)
            for b in holdout:
                out = interp.run({**pf, **b, **masks(sites, b['position'].shape[0], 0, device, False)}, extra=[diff_name])
                for k in ('loss', 'rec', 'codebook', 'commit'):
                    sums[k] = sums.get(k, 0.0) + float(out[k])
                fg = (b['image'] != background).float()
                fg_abs += float((out[diff_name].abs() * fg).sum())
                fg_n += float(fg.sum())
        res = {k: v / len(holdout) for k, v in sums.items()}
        res['recFg'] = fg_abs / max(fg_n, 1.0)
        return res

    sched = Schedule(args.vq_lr, args.final_ratio, args.warmup, args.vq_minutes * 60, args.max_steps)
    h0 = evaluate()
    history = [{'step': 0, 'seconds': 0.0, 'slices': 0, 'holdout': h0}]
    best = {'recFg': h0['recFg'], 'step': 0, 'weights': start.copy()}
    log(f'vqvae step 0: held-out {json.dumps(h0)}')
    counts = torch.zeros(k_codes, dtype=torch.int64, device=device)
    per_step = args.vq_batch // args.chunk
    step, seen, wait, reseeded = 0, 0, 0.0, 0
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
        out = interp.run({**params.feeds(flat), **feeds, **masks(sites, n, cfg['dropout'], device, True)}, extra=[z_name])
        adam_step(opt, flat, out['loss'], lr)
        counts += torch.bincount(out['codes'].reshape(-1).long(), minlength=k_codes)
        step += 1
        seen += n
        for k in ('loss', 'rec', 'codebook', 'commit'):
            sums[k] = sums.get(k, 0.0) + float(out[k].detach())
        n_sums += 1
        if step % args.reseed_every == 0:
            dead = torch.nonzero(counts == 0).reshape(-1).tolist()
            if dead:
                z = out[z_name].detach()
                picks = torch.randperm(z.shape[0], generator=rng)[:len(dead)].tolist()
                state = opt.state[flat]
                with torch.no_grad():
                    for code, pick in zip(dead, picks):
                        at = book['offset'] + code * d
                        flat[at:at + d] = z[pick]
                        state['exp_avg'][at:at + d] = 0
                        state['exp_avg_sq'][at:at + d] = 0
                reseeded += len(dead)
            counts.zero_()
        if step % args.eval_every == 0:
            h = evaluate()
            tr = {k: v / n_sums for k, v in sums.items()}
            sums, n_sums = {}, 0
            rec = {'step': step, 'seconds': round(time.time() - t0, 1), 'slices': seen, 'lr': lr, 'train': tr, 'holdout': h,
                   'reseeded': reseeded, 'dataWaitSeconds': round(wait, 1)}
            history.append(rec)
            if h['recFg'] < best['recFg']:
                best = {'recFg': h['recFg'], 'step': step, 'weights': flat.detach().cpu().numpy().copy()}
                best['weights'].tofile(os.path.join(args.out, 'vqvae-best.f32'))
            log(f'vqvae step {step} ({rec["seconds"]} s, {seen} slices, lr {lr:.2e}, wait {wait:.0f} s): train loss {tr["loss"]:.4f} '
                f'held-out loss {h["loss"]:.4f} rec {h["rec"]:.4f} brain L1 {h["recFg"]:.4f}, re-seeded {reseeded}')
    wall = time.time() - t0
    best['weights'].tofile(os.path.join(args.out, 'vqvae-best.f32'))
    record = {'kind': 'vqvae', 'steps': step, 'batch': args.vq_batch, 'slices': seen, 'trainSeconds': round(wall, 1),
              'slicesPerSecond': round(seen / max(wall, 1e-9), 1), 'dataWaitSeconds': round(wait, 1), 'reseededCodes': reseeded,
              'reseedEvery': args.reseed_every, 'adam': {'lr': args.vq_lr, 'lrFinal': args.vq_lr * args.final_ratio, 'warmup': args.warmup,
              'schedule': 'linear warm-up, cosine over the wall time left'}, 'clip': 1, 'dropout': cfg['dropout'], 'start': meta.get('start'),
              'selectedBy': 'held-out brain L1 (recFg)', 'bestStep': best['step'], 'bestHoldoutRecFg': best['recFg'], 'history': history}
    log(f'vqvae done: {step} steps, {seen} slices in {wall:.0f} s, best step {best["step"]} held-out brain L1 {best["recFg"]:.4f}')
    return best['weights'], record


def tamper_count(cells, fraction):
    """src/methods/lsgs/tamper.ts tamperCount: round(fraction · cells), at least 1 when fraction > 0."""
    if fraction <= 0:
        return 0
    return min(cells, max(1, int(math.floor(fraction * cells + 0.5))))


def tampered_feeds(codes, codebook_size, fraction, beta, gen):
    """The repair task of src/methods/lsgs/tamper.ts on a batch of code maps [n, h, w]: input codes with
    exactly m positions per map replaced by another code, the targets, the loss weights and the mask."""
    n, h, w = codes.shape
    cells = h * w
    m = tamper_count(cells, fraction)
    flat = codes.reshape(n, cells)
    inputs = flat.clone()
    tampered = torch.zeros(n, cells, device=codes.device)
    if m > 0:
        picks = torch.rand(n, cells, generator=gen).argsort(dim=1)[:, :m].to(codes.device)
        original = flat.gather(1, picks)
        other = torch.randint(0, codebook_size - 1, (n, m), generator=gen).to(codes.device, codes.dtype)
        inputs.scatter_(1, picks, other + (other >= original).to(codes.dtype))
        tampered.scatter_(1, picks, 1.0)
    if m == 0 or m == cells:
        weights = torch.full((n, cells), 1.0 / cells, device=codes.device)
    else:
        weights = tampered * ((1 - beta) / m) + (1 - tampered) * (beta / (cells - m))
    shape = (n, h, w)
    return {'codes': inputs.reshape(shape), 'targets': codes, 'loss_weights': weights.reshape(shape), 'tampered': tampered.reshape(shape)}


def train_prior(args, vq, vq_weights, prior, holdout, train, device):
    vq_interp, vq_params, vq_meta, _ = vq
    cfg_vq = vq_meta['config']
    size, background = cfg_vq['inputSize'], vq_meta['background']
    encoder = vq_interp.pruned(['codes'])
    enc_sites = [s for s in dropout_sites(args.vq_export) if s[0] in encoder.inputs_needed()]
    vq_flat = torch.from_numpy(vq_weights.copy()).to(device)
    vq_feeds = vq_params.feeds(vq_flat)
    interp, params, meta, start = prior
    cfg = meta['config']
    sites = dropout_sites(args.prior_export)
    cells = size // cfg['height']

    def encode(feeds):
        with torch.no_grad():
            n = feeds['position'].shape[0]
            return encoder.run({**vq_feeds, **feeds, **masks(enc_sites, n, 0, device, False)})['codes']

    def foreground_codes(image):
        fg = (image[..., 0] != background).float().unsqueeze(1)
        return torch.nn.functional.max_pool2d(fg, cells).squeeze(1) > 0

    transformer = meta['kind'] == 'transformer'
    kind = meta['kind']
    gen = torch.Generator(device='cpu').manual_seed(args.torch_seed + 1)
    held = [({'codes': encode(b), 'position': b['position']}, foreground_codes(b['image'])) for b in holdout]
    if transformer:  # fixed tampering of the held-out maps
        held_gen = torch.Generator(device='cpu').manual_seed(args.torch_seed + 2)
        held = [({**feeds, **tampered_feeds(feeds['codes'], cfg['codebookSize'], args.tamper, args.repair_beta, held_gen)}, fg) for feeds, fg in held]
    flat = torch.from_numpy(start.copy()).to(device).requires_grad_(True)
    opt = torch.optim.Adam([flat], lr=args.prior_lr, betas=(0.9, 0.999), eps=1e-8)

    def evaluate():
        total, nll_fg, n_fg = 0.0, 0.0, 0.0
        extra = {}
        with torch.no_grad():
            pf = params.feeds(flat)
            for feeds, fg in held:
                n = feeds['position'].shape[0]
                out = interp.run({**pf, **feeds, **masks(sites, n, 0, device, False)})
                total += float(out['loss'])
                if transformer:
                    for key in ('ceTampered', 'ceUntampered'):
                        extra[key] = extra.get(key, 0.0) + float(out[key])
                    # the untampered maps with weight 1 on foreground codes: loss = Σ CE over them / n
                    clean = {'codes': feeds['targets'], 'targets': feeds['targets'], 'tampered': torch.zeros_like(feeds['tampered']), 'loss_weights': fg.float()}
                    nll_fg += float(interp.run({**pf, 'position': feeds['position'], **clean, **masks(sites, n, 0, device, False)})['loss']) * n
                else:
                    nll_fg += float((out['nll'] * fg).sum())
                n_fg += float(fg.sum())
        return {'loss': total / len(held), 'nllFg': nll_fg / max(n_fg, 1.0), **{k: v / len(held) for k, v in extra.items()}}

    select = 'loss' if transformer else 'nllFg'

    seconds = args.prior_minutes * 60
    if args.total_minutes > 0:  # what is left of the whole job's budget, less a margin for the records
        seconds = min(seconds, args.total_minutes * 60 - (time.time() - args.t_start) - 20)
    sched = Schedule(args.prior_lr, args.final_ratio, args.warmup, seconds, args.max_steps)
    h0 = evaluate()
    history = [{'step': 0, 'seconds': 0.0, 'maps': 0, 'holdout': h0}]
    best = {select: h0[select], 'step': 0, 'weights': start.copy()}
    log(f'{kind} step 0: held-out {json.dumps(h0)}')
    per_step = args.prior_batch // args.chunk
    step, seen, wait = 0, 0, 0.0
    sums, n_sums = 0.0, 0
    t0 = time.time()
    while True:
        lr = sched.at(step, time.time() - t0, log)
        if lr is None:
            break
        tw = time.time()
        feeds = to_device(train.take(per_step), size, device)
        wait += time.time() - tw
        n = feeds['position'].shape[0]
        codes = encode(feeds)
        task = tampered_feeds(codes, cfg['codebookSize'], args.tamper, args.repair_beta, gen) if transformer else {'codes': codes}
        out = interp.run({**params.feeds(flat), **task, 'position': feeds['position'], **masks(sites, n, cfg['dropout'], device, True)})
        adam_step(opt, flat, out['loss'], lr)
        step += 1
        seen += n
        sums += float(out['loss'].detach())
        n_sums += 1
        if step % args.eval_every == 0:
            h = evaluate()
            rec = {'step': step, 'seconds': round(time.time() - t0, 1), 'maps': seen, 'lr': lr, 'train': {'loss': sums / n_sums},
                   'holdout': h, 'dataWaitSeconds': round(wait, 1)}
            sums, n_sums = 0.0, 0
            history.append(rec)
            if h[select] < best[select]:
                best = {select: h[select], 'step': step, 'weights': flat.detach().cpu().numpy().copy()}
                best['weights'].tofile(os.path.join(args.out, f'{kind}-best.f32'))
            log(f'{kind} step {step} ({rec["seconds"]} s, {seen} maps, lr {lr:.2e}, wait {wait:.0f} s): train loss {rec["train"]["loss"]:.4f} '
                f'held-out loss {h["loss"]:.4f} brain NLL {h["nllFg"]:.4f}')
    wall = time.time() - t0
    best['weights'].tofile(os.path.join(args.out, f'{kind}-best.f32'))
    task = {'tamperFraction': args.tamper, 'beta': args.repair_beta} if transformer else {}
    record = {'kind': kind, **task, 'steps': step, 'batch': args.prior_batch, 'maps': seen, 'trainSeconds': round(wall, 1),
              'mapsPerSecond': round(seen / max(wall, 1e-9), 1), 'dataWaitSeconds': round(wait, 1),
              'codes': f'the trained VQ-VAE (vqvae-best.f32) encoding fresh slices every step (augmentation: {args.augment})',
              'adam': {'lr': args.prior_lr, 'lrFinal': args.prior_lr * args.final_ratio, 'warmup': args.warmup, 'schedule': 'linear warm-up, cosine over the wall time left'},
              'clip': 1, 'dropout': cfg['dropout'], 'start': meta.get('start'),
              'selectedBy': 'held-out repair loss (tampered maps, fixed seed)' if transformer else 'held-out brain NLL (nllFg)', 'bestStep': best['step'],
              ('bestHoldoutLoss' if transformer else 'bestHoldoutNllFg'): best[select], 'history': history}
    log(f'{kind} done: {step} steps, {seen} maps in {wall:.0f} s, best step {best["step"]} held-out {select} {best[select]:.4f}')
    return record


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vq-export', required=True)
    ap.add_argument('--prior-export', required=True)
    ap.add_argument('--out', required=True)
    add_population_args(ap)
    ap.add_argument('--augment', default='paper', choices=['paper', 'none'], help='augmentation of the training slices (both phases)')
    ap.add_argument('--vq-batch', type=int, default=128)
    ap.add_argument('--prior-batch', type=int, default=128)
    ap.add_argument('--vq-lr', type=float, default=5e-4)
    ap.add_argument('--prior-lr', type=float, default=1e-3)
    ap.add_argument('--final-ratio', type=float, default=0.02)
    ap.add_argument('--tamper', type=float, default=0.1, help='LSGS transformer: fraction of each map tampered (src/methods/lsgs/tamper.ts)')
    ap.add_argument('--repair-beta', type=float, default=0.01, help='LSGS transformer: weight β of the untampered positions in the repair loss')
    ap.add_argument('--warmup', type=int, default=200)
    ap.add_argument('--vq-minutes', type=float, default=4.5)
    ap.add_argument('--prior-minutes', type=float, default=3.0)
    ap.add_argument('--total-minutes', type=float, default=0, help='cap on the whole job: the prior phase gets what is left')
    ap.add_argument('--max-steps', type=int, default=0, help='per phase (tests); 0 = what the budget fits')
    ap.add_argument('--eval-every', type=int, default=250)
    ap.add_argument('--reseed-every', type=int, default=500)
    ap.add_argument('--seed', default='lsr-gpu0')
    ap.add_argument('--torch-seed', type=int, default=0)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--threads', type=int, default=os.cpu_count() or 1, help='torch CPU threads (torch defaults to physical cores, 1 on some VMs)')
    args = ap.parse_args()
    t_start = args.t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.torch_seed)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    vq = load_export(args.vq_export, device)
    prior = load_export(args.prior_export, device)
    prior_kind = prior[2]['kind']
    parity = {'vqvae': check(args.vq_export, device, loaded=vq), prior_kind: check(args.prior_export, device, loaded=prior)}
    if max(parity.values()) > 1e-3:
        raise SystemExit(f'parity check failed: {parity}')
    size = vq[2]['config']['inputSize']
    train, holdout = population_batches(args, size, device, t_start)
    common = run_record(args, 'scripts/gpu/train_lsr.py', parity, device)
    try:
        vq_weights, vq_record = train_vqvae(args, vq, holdout, train, device)
        json.dump({**common, **vq_record}, open(os.path.join(args.out, 'vqvae-record.json'), 'w'), indent=1)
        prior_record = train_prior(args, vq, vq_weights, prior, holdout, train, device)
        json.dump({**common, **prior_record}, open(os.path.join(args.out, f'{prior_kind}-record.json'), 'w'), indent=1)
    finally:
        train.close()
    log(f'all done after {time.time() - t_start:.0f} s')


if __name__ == '__main__':
    main()
