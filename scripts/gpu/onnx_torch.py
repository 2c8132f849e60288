#!/usr/bin/env python3
"""The project's ONNX training graphs, run with torch operators (autograd gives the gradient).

An export folder (scripts/gpu/net-io.ts: train.onnx, bindings.*, start.f32, meta.json, check.*) is
interpreted node by node; `Identity` nodes named stop_gradient* detach, as the project's own backward
pass treats them. `check` runs the exported random batch and compares the forward outputs and the
gradient of `loss` with respect to the flat weights with what ONNX Runtime and the project's backward
graph computed for it:

  python3 scripts/gpu/onnx_torch.py EXPORT_DIR [EXPORT_DIR ...] [--device cpu|cuda]
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

INT64_MAX = 2 ** 62
ONNX_TO_TORCH = {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 11: torch.float64}


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def as_ints(t):
    return [int(v) for v in t.reshape(-1).tolist()]


def reduce_axes(x, axes):
    return [a % x.dim() for a in axes] if axes else list(range(x.dim()))


def slice_op(x, starts, ends, axes, steps):
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.dim()
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st <= 0:
            raise ValueError('Slice with a non-positive step is not supported')
        n = x.shape[a]
        s = max(0, min(n, s + n if s < 0 else s))
        e = max(0, min(n, e + n if e < 0 else e))
        index[a % x.dim()] = slice(s, e, st)
    return x[tuple(index)]


def pad_op(x, pads, value, mode):
    if mode not in ('constant', b'constant'):
        raise ValueError(f'Pad mode {mode} not supported')
    k = len(pads) // 2
    torch_pads = []
    for i in reversed(range(k)):
        torch_pads += [pads[i], pads[i + k]]
    return F.pad(x, torch_pads, value=value)


def gather_op(x, idx, axis):
    axis %= x.dim()
    idx = idx.long()
    flat = x.index_select(axis, idx.reshape(-1))
    return flat.reshape(x.shape[:axis] + idx.shape + x.shape[axis + 1:])


class GraphInterpreter:
    """Runs an ONNX graph's nodes with torch operators on one device."""

    def __init__(self, model, device):
        self.nodes = [(n.op_type, n.name, list(n.input), list(n.output), attrs(n)) for n in model.graph.node]
        self.consts = {}
        self.ints = {}
        for t in model.graph.initializer:
            a = numpy_helper.to_array(t)
            if a.dtype in (np.int64, np.int32):
                self.ints[t.name] = [int(v) for v in a.reshape(-1)]
            self.consts[t.name] = torch.from_numpy(np.array(a, copy=True)).to(device)
        self.outputs = [o.name for o in model.graph.output]

    def int_list(self, env, name):
        return self.ints[name] if name in self.ints else as_ints(env[name])

    def run(self, feeds, extra=()):
        """The graph outputs (and the intermediate values named in `extra`)."""
        env = dict(self.consts)
        env.update(feeds)
        for op, name, ins, outs, at in self.nodes:
            x = [env[i] if i else None for i in ins]
            y = self.apply(op, name, ins, x, at, env, len(outs))
            if isinstance(y, (list, tuple)):
                for o, v in zip(outs, y):
                    env[o] = v
            else:
                env[outs[0]] = y
        return {n: env[n] for n in list(self.outputs) + list(extra)}

    def pruned(self, outputs):
        """An interpreter of the nodes that `outputs` (graph outputs or intermediate values) depend on."""
        need = set(outputs)
        kept = []
        for node in reversed(self.nodes):
            if need.intersection(node[3]):
                kept.append(node)
                need.update(i for i in node[2] if i)
        sub = object.__new__(GraphInterpreter)
        sub.nodes, sub.consts, sub.ints, sub.outputs = list(reversed(kept)), self.consts, self.ints, list(outputs)
        return sub

    def inputs_needed(self):
        """Names read by the nodes that are not produced by them (graph inputs and constants)."""
        made = {o for node in self.nodes for o in node[3]}
        return {i for node in self.nodes for i in node[2] if i and i not in made}

    def apply(self, op, name, ins, x, at, env, n_out):
        if op == 'Identity':
            return x[0].detach() if name.startswith('stop_gradient') else x[0]
        if op == 'Reshape':
            shape = self.int_list(env, ins[1])
            return x[0].reshape([x[0].shape[i] if v == 0 else v for i, v in enumerate(shape)])
        # Max/Min: at a tie the whole gradient goes to the first input, as the project's backward pass
        # (src/onnx/autodiff/vjp.ts `extremum`) does; torch.maximum would split it, and ELU (written as
        # max(x, exp(min(x, 0)) − 1)) would get the derivative 0.75 instead of 1 where x = 0 exactly.
        binary = {'Add': torch.add, 'Sub': torch.sub, 'Mul': torch.mul, 'Div': torch.div,
                  'Min': lambda a, b: torch.where(a <= b, a, b), 'Max': lambda a, b: torch.where(a >= b, a, b)}
        if op in binary:
            y = x[0]
            for v in x[1:]:
                y = binary[op](y, v)
            return y
        if op == 'Sum':
            y = x[0]
            for v in x[1:]:
                y = y + v
            return y
        unary = {'Exp': torch.exp, 'Abs': torch.abs, 'Neg': torch.neg, 'Log': torch.log, 'Relu': torch.relu,
                 'Sigmoid': torch.sigmoid, 'Tanh': torch.tanh, 'Sqrt': torch.sqrt}
        if op in unary:
            return unary[op](x[0])
        if op == 'MatMul':
            return torch.matmul(x[0], x[1])
        if op == 'Concat':
            return torch.cat(x, dim=at['axis'])
        if op == 'Transpose':
            return x[0].permute(list(at['perm']) if 'perm' in at else list(reversed(range(x[0].dim()))))
        if op == 'ReduceMean':
            axes = reduce_axes(x[0], list(at.get('axes', [])))
            return x[0].mean(dim=axes, keepdim=bool(at.get('keepdims', 1)))
        if op == 'ReduceSum':
            given = self.int_list(env, ins[1]) if len(ins) > 1 and ins[1] else []
            if not given and at.get('noop_with_empty_axes', 0):
                return x[0]
            return x[0].sum(dim=reduce_axes(x[0], given), keepdim=bool(at.get('keepdims', 1)))
        if op == 'ReduceLogSumExp':
            axes = reduce_axes(x[0], list(at.get('axes', [])))
            return torch.logsumexp(x[0], dim=axes, keepdim=bool(at.get('keepdims', 1)))
        if op == 'Equal':
            return x[0] == x[1]
        if op == 'Softmax':
            return torch.softmax(x[0], dim=at.get('axis', -1))
        if op == 'LogSoftmax':
            return torch.log_softmax(x[0], dim=at.get('axis', -1))
        if op == 'ArgMin':
            return torch.argmin(x[0], dim=at.get('axis', 0), keepdim=bool(at.get('keepdims', 1)))
        if op == 'Cast':
            return x[0].to(ONNX_TO_TORCH[at['to']])
        if op == 'Gather':
            return gather_op(x[0], x[1], at.get('axis', 0))
        if op == 'Shape':
            return torch.tensor(list(x[0].shape), dtype=torch.int64, device=x[0].device)
        if op == 'Slice':
            get = lambda k: self.int_list(env, ins[k]) if len(ins) > k and ins[k] else None
            return slice_op(x[0], get(1), get(2), get(3), get(4))
        if op == 'Expand':
            shape = torch.broadcast_shapes(tuple(x[0].shape), tuple(self.int_list(env, ins[1])))
            return x[0].expand(shape)
        if op == 'Pad':
            value = float(x[2]) if len(x) > 2 and x[2] is not None else 0.0
            return pad_op(x[0], self.int_list(env, ins[1]), value, at.get('mode', b'constant'))
        if op == 'Split':
            axis = at.get('axis', 0)
            sizes = self.int_list(env, ins[1]) if len(ins) > 1 and ins[1] else list(at.get('split', []))
            if not sizes:
                sizes = [x[0].shape[axis] // n_out] * n_out
            return torch.split(x[0], sizes, dim=axis)
        if op == 'LayerNormalization':
            axis = at.get('axis', -1) % x[0].dim()
            y = F.layer_norm(x[0], x[0].shape[axis:], x[1], x[2] if len(x) > 2 else None, at.get('epsilon', 1e-5))
            if n_out > 1:
                raise ValueError('LayerNormalization with mean / inverse-σ outputs is not supported')
            return y
        if op == 'InstanceNormalization':
            return F.instance_norm(x[0], weight=x[1], bias=x[2], eps=at.get('epsilon', 1e-5))
        if op == 'Conv':
            pads = list(at.get('pads', [0, 0, 0, 0]))
            h = x[0]
            if pads[0] != pads[2] or pads[1] != pads[3]:
                h = F.pad(h, (pads[1], pads[3], pads[0], pads[2]))
                pad = 0
            else:
                pad = (pads[0], pads[1])
            return F.conv2d(h, x[1], x[2] if len(x) > 2 else None, stride=tuple(at.get('strides', [1, 1])), padding=pad,
                            dilation=tuple(at.get('dilations', [1, 1])), groups=at.get('group', 1))
        if op == 'Resize':
            if at.get('mode', b'nearest') not in (b'nearest', 'nearest'):
                raise ValueError(f'Resize mode {at.get("mode")} not supported')
            scales = x[2] if len(x) > 2 and x[2] is not None and x[2].numel() > 0 else None
            if scales is None:
                return F.interpolate(x[0], size=as_ints(x[3])[2:], mode='nearest')
            return F.interpolate(x[0], scale_factor=[float(v) for v in scales.tolist()][2:], mode='nearest')
        if op == 'SpaceToDepth':
            b = at['blocksize']
            n, c, h, w = x[0].shape
            # ONNX orders the output channels (i·b + j)·C + c; pixel_unshuffle gives c·b² + i·b + j.
            return F.pixel_unshuffle(x[0], b).reshape(n, c, b * b, h // b, w // b).transpose(1, 2).reshape(n, b * b * c, h // b, w // b)
        if op == 'DepthToSpace':
            if at.get('mode', b'DCR') not in (b'CRD', 'CRD'):
                raise ValueError(f'DepthToSpace mode {at.get("mode")} not supported')
            return F.pixel_shuffle(x[0], at['blocksize'])
        raise ValueError(f'operator {op} not supported by the interpreter')


class FlatParams:
    """The flat weights (the CPU trainer's layout) and the graph inputs gathered from them."""

    def __init__(self, export_dir, device):
        self.bindings = []
        blob = np.fromfile(os.path.join(export_dir, 'bindings.bin'), dtype=np.uint8)
        for b in json.load(open(os.path.join(export_dir, 'bindings.json'))):
            n = b['length']
            index = np.frombuffer(blob[b['indexOffset']:b['indexOffset'] + 4 * n].tobytes(), dtype=np.int32)
            constants = (np.frombuffer(blob[b['constantsOffset']:b['constantsOffset'] + 4 * n].tobytes(), dtype=np.float32)
                         if b['constantsOffset'] >= 0 else np.zeros(n, dtype=np.float32))
            mask = torch.from_numpy(index >= 0).to(device)
            idx = torch.from_numpy(np.maximum(index, 0).astype(np.int64)).to(device)
            self.bindings.append((b['input'], list(b['dims']), idx, mask, torch.from_numpy(constants.copy()).to(device)))

    def feeds(self, flat):
        return {name: torch.where(mask, flat[idx], const).reshape(dims) for name, dims, idx, mask, const in self.bindings}


def load_export(export_dir, device):
    """(interpreter, flat-parameter map, meta, start weights as a float32 numpy array)."""
    meta = json.load(open(os.path.join(export_dir, 'meta.json')))
    interp = GraphInterpreter(onnx.load(os.path.join(export_dir, 'train.onnx')), device)
    params = FlatParams(export_dir, device)
    start = np.fromfile(os.path.join(export_dir, 'start.f32'), dtype=np.float32)
    if start.size != meta['total']:
        raise SystemExit(f'{export_dir}: start.f32 holds {start.size} weights, the layout {meta["total"]}')
    return interp, params, meta, start


def check(export_dir, device, log=print, loaded=None):
    """Forward outputs and d loss / d flat weights against ONNX Runtime's; returns the worst relative error.
    `loaded`: what load_export returned for this folder, when the caller has it already."""
    interp, params, meta, start = loaded if loaded is not None else load_export(export_dir, device)
    spec = json.load(open(os.path.join(export_dir, 'check.json')))
    raw = np.fromfile(os.path.join(export_dir, 'check.bin'), dtype=np.uint8)
    np_types = {'float32': np.float32, 'int32': np.int32, 'int64': np.int64}
    feeds = {}
    for f in spec['feeds']:
        dt = np_types[f['dtype']]
        a = np.frombuffer(raw[f['offset']:f['offset'] + f['length'] * np.dtype(dt).itemsize].tobytes(), dtype=dt)
        feeds[f['name']] = torch.from_numpy(a.copy().reshape(f['dims'])).to(device)
    flat = torch.from_numpy(start.copy()).to(device).requires_grad_(True)
    out = interp.run({**params.feeds(flat), **feeds})
    worst = 0.0
    for name, want in spec['expected'].items():
        got = out[name].detach().double().cpu().reshape(-1)
        scale = max(want['sumAbs'], 1e-6)
        err = max(abs(float(got.sum()) - want['sum']) / scale, abs(float(got.abs().sum()) - want['sumAbs']) / scale)
        first = got[:len(want['first'])].tolist()
        err = max([err] + [abs(a - b) / max(abs(b), 1e-3) for a, b in zip(first, want['first'])])
        worst = max(worst, err)
        log(f'{meta.get("kind", "?")} {name}: sum torch {float(got.sum()):.7g} onnxruntime {want["sum"]:.7g} (relative error {err:.1e})')
    out['loss'].backward()
    want = np.fromfile(os.path.join(export_dir, 'check-grad.f32'), dtype=np.float32).astype(np.float64)
    got = flat.grad.detach().double().cpu().numpy()
    gerr = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-12))
    log(f'{meta.get("kind", "?")} d loss / d weights: |torch − project backward| / |project backward| = {gerr:.1e} over {want.size} weights')
    return max(worst, gerr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('exports', nargs='+')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--tolerance', type=float, default=1e-3)
    args = ap.parse_args()
    failed = [d for d in args.exports if check(d, torch.device(args.device)) > args.tolerance]
    if failed:
        sys.exit(f'parity failed: {", ".join(failed)}')
    print(f'parity ok: {len(args.exports)} graph(s)')


if __name__ == '__main__':
    main()
