/**
 * ONNX emitters of the building blocks of src/models/blocks.ts, one function per block, computing
 * the same values. Layout: the graphs run NCHW (ONNX's convolution layout); weights are stored by
 * the models NHWC-style ([kh, kw, cin, cout]) and are transposed on the host when emitted.
 *
 * A model emitter (./emit-vqvae.ts, ./emit-pixelsnail.ts, ./emit-transformer.ts, ./emit-vae.ts)
 * strings these together exactly as the model's tfjs forward function does, with the graph inputs
 * and outputs its engine runs (src/methods/lsr/onnx-engine.ts, src/methods/lsgs/onnx-engine.ts,
 * src/methods/vae/onnx-engine.ts). A new model family needs one such emitter (add an operator helper to
 * ./graph.ts and a block emitter here where needed), then a parity test against the tfjs forward
 * function (test/onnx-parity*.test.ts show how).
 */
import type { HostTensor } from '../io/tensor-bundle.js';
import type { Pad4 } from '../models/blocks.js';
import { groupsFor } from '../models/blocks.js';
import type { ParamMap } from '../models/params.js';
import { GraphBuilder, type Value } from './graph.js';
import { DataType } from './onnx-proto.js';

/** Host copies of a model's parameters, by name. */
export type HostParams = ReadonlyMap<string, HostTensor>;

export function hostParams(params: ParamMap): HostParams {
  const out = new Map<string, HostTensor>();
  for (const [name, v] of Object.entries(params)) out.set(name, { shape: v.shape, values: v.dataSync() as Float32Array });
  return out;
}

export function hostParam(params: HostParams, name: string): HostTensor {
  const t = params.get(name);
  if (t === undefined) throw new Error(`ONNX export: parameter ${name} is missing`);
  return t;
}

/** A feature map in the graph: NCHW with a symbolic batch and static channels and spatial size. */
export interface Feature {
  readonly value: Value;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
}

/** Training graphs insert channel dropout here (one call per gated block, in forward order); inference has none. */
export type DropoutHook = (g: GraphBuilder, h: Feature, block: string) => Feature;

export function feature(value: Value, channels: number, height: number, width: number): Feature {
  return { value, channels, height, width };
}

/** [kh, kw, cin, cout] → [cout, cin, kh, kw]. */
export function convWeightToOihw(w: HostTensor): { dims: number[]; values: Float32Array } {
  const [kh, kw, cin, cout] = w.shape;
  const out = new Float32Array(w.values.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = w.values[((y * kw + x) * cin + i) * cout + o];
      }
    }
  }
  return { dims: [cout, cin, kh, kw], values: out };
}

/** TF's 'same' padding of one axis: [before, after] (the extra pixel goes after). */
export function samePadding(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

export interface ConvOptions {
  stride?: number;
  /** 'same' (default), 'valid', or explicit zero padding [top, bottom, left, right]. */
  padding?: 'same' | 'valid' | Pad4;
}

/** blocks.conv (optionally preceded by blocks.padSpatial, given as explicit padding). */
/** The conv weight `${prefix}.w` ([kh, kw, in, out]), checked against the feature it is applied to. */
function convWeightFor(params: HostParams, prefix: string, x: Feature): HostTensor {
  const w = hostParam(params, `${prefix}.w`);
  if (w.shape[2] !== x.channels) throw new Error(`ONNX export: ${prefix}.w expects ${w.shape[2]} input channels, the graph has ${x.channels}`);
  return w;
}

export function emitConv(g: GraphBuilder, params: HostParams, prefix: string, x: Feature, opts: ConvOptions = {}): Feature {
  const w = convWeightFor(params, prefix, x);
  const [kh, kw, cin, cout] = w.shape;
  const stride = opts.stride ?? 1;
  const padding = opts.padding ?? 'same';
  let pad: Pad4;
  if (padding === 'same') {
    const [top, bottom] = samePadding(x.height, kh, stride);
    const [left, right] = samePadding(x.width, kw, stride);
    pad = [top, bottom, left, right];
  } else if (padding === 'valid') pad = [0, 0, 0, 0];
  else pad = padding;
  const weight = convWeightToOihw(w);
  const inputs = [x.value, g.initializer(`${prefix}.w`, weight.dims, weight.values)];
  const b = params.get(`${prefix}.b`);
  if (b !== undefined) inputs.push(g.initializer(`${prefix}.b`, [cout], b.values));
  const [top, bottom, left, right] = pad;
  const y = g.node('Conv', inputs, { kernel_shape: [kh, kw], strides: [stride, stride], pads: [top, left, bottom, right], dilations: [1, 1], group: 1 }, prefix);
  const height = Math.floor((x.height + top + bottom - kh) / stride) + 1;
  const width = Math.floor((x.width + left + right - kw) / stride) + 1;
  return feature(y, cout, height, width);
}

/**
 * Nearest 2× upsampling followed by a 'same' 3×3 convolution (emitUpsampleNearest2x + emitConv), as
 * one convolution on the small grid and a DepthToSpace: output pixel (2i + a, 2j + b) sees small rows
 * i − 1, i, i (a = 0) or i, i, i + 1 (a = 1) through the kernel's three rows, likewise for columns,
 * so each phase (a, b) is a 3×3 kernel whose taps are sums of the original's. The phase kernels
 * [4·Cout, Cin, 3, 3] are formed in the graph (a constant 0/1 matrix times the weights), so the
 * weights stay one tensor to differentiate; the convolution runs on a quarter of the pixels with four
 * times the output channels and no upsampled tensor is written. Same values as the two-step form up
 * to float summation order.
 */
export function emitUpsampleConvPhases(g: GraphBuilder, params: HostParams, prefix: string, x: Feature): Feature {
  const w = convWeightFor(params, prefix, x);
  const [kh, kw, cin, cout] = w.shape;
  if (kh !== 3 || kw !== 3) throw new Error(`ONNX export: ${prefix}: the phase form of upsample + conv needs a 3×3 kernel, got ${kh}×${kw}`);
  // Small-grid tap (0…2) that big-kernel tap k reads for phase p.
  const smallTap = (p: number, k: number) => (p === 0 ? (k === 0 ? 0 : 1) : k === 2 ? 2 : 1);
  const taps = new Float32Array(9 * 36);
  for (let a = 0; a < 2; a++) {
    for (let b = 0; b < 2; b++) {
      for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) taps[(ky * 3 + kx) * 36 + (a * 2 + b) * 9 + smallTap(a, ky) * 3 + smallTap(b, kx)]! += 1;
    }
  }
  const weight = convWeightToOihw(w);
  const flat = g.reshape(g.initializer(`${prefix}.w`, weight.dims, weight.values), [cout * cin, 9]);
  const phased = g.matMul(flat, g.initializer(`${prefix}.phase_taps`, [9, 36], taps)); // [Cout·Cin, 4·9]
  // DepthToSpace (CRD) reads output channel o·4 + a·2 + b for phase (a, b) of channel o.
  const kernels = g.reshape(g.transpose(g.reshape(phased, [cout, cin, 4, 9]), [0, 2, 1, 3]), [4 * cout, cin, 3, 3]);
  const inputs = [x.value, kernels];
  const bias = params.get(`${prefix}.b`);
  if (bias !== undefined) inputs.push(g.reshape(g.expand(g.reshape(g.initializer(`${prefix}.b`, [cout], bias.values), [cout, 1]), g.ints([cout, 4])), [4 * cout]));
  const y = g.node('Conv', inputs, { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }, prefix);
  return feature(g.node('DepthToSpace', [y], { blocksize: 2, mode: 'CRD' }, `${prefix}.phases`), cout, 2 * x.height, 2 * x.width);
}

/**
 * A 'same' stride-2 convolution (emitConv with stride 2) as a stride-1 convolution of SpaceToDepth(x):
 * input row 2i + ky − top is row i + dy, phase ry of the half-size grid when ky − top = 2·dy + ry, so the
 * kernel, zero-padded to an even size, regroups into [Cout, 4·Cin, ⌈k/2⌉…, …] taps over the four phase
 * planes (SpaceToDepth's channel order (ry·2 + rx)·Cin + c). Formed in the graph from the one weight
 * tensor; the training graphs use it so that the convolution, its input gradient (no ConvTranspose) and
 * its weight gradient run at stride 1 on 4·Cin channels. Even input sizes only.
 */
export function emitConvStride2AsSpaceToDepth(g: GraphBuilder, params: HostParams, prefix: string, x: Feature): Feature {
  const w = convWeightFor(params, prefix, x);
  const [kh, kw, cin, cout] = w.shape;
  if (x.height % 2 !== 0 || x.width % 2 !== 0) throw new Error(`ONNX export: ${prefix}: SpaceToDepth needs an even input size, got ${x.height}×${x.width}`);
  // Per axis: the half-grid offsets dy the kernel reaches, the kernel's zero padding and the conv's.
  const along = (size: number, k: number) => {
    const [before] = samePadding(size, k, 2);
    const lo = Math.floor(-before / 2);
    const hi = Math.floor((k - 1 - before) / 2);
    const taps = hi - lo + 1;
    const front = -2 * lo - before;
    return { taps, front, back: 2 * taps - k - front, padLo: -lo, padHi: Math.ceil(size / 2) - size / 2 + hi };
  };
  const r = along(x.height, kh);
  const c = along(x.width, kw);
  const weight = convWeightToOihw(w);
  let kernel = g.pad(g.initializer(`${prefix}.w`, weight.dims, weight.values), [0, 0, r.front, c.front, 0, 0, r.back, c.back]);
  kernel = g.reshape(g.transpose(g.reshape(kernel, [cout, cin, r.taps, 2, c.taps, 2]), [0, 3, 5, 1, 2, 4]), [cout, 4 * cin, r.taps, c.taps]);
  const inputs = [g.node('SpaceToDepth', [x.value], { blocksize: 2 }), kernel];
  const b = params.get(`${prefix}.b`);
  if (b !== undefined) inputs.push(g.initializer(`${prefix}.b`, [cout], b.values));
  const y = g.node('Conv', inputs, { kernel_shape: [r.taps, c.taps], strides: [1, 1], pads: [r.padLo, c.padLo, r.padHi, c.padHi], dilations: [1, 1], group: 1 }, prefix);
  return feature(y, cout, x.height / 2, x.width / 2);
}

/**
 * tf.conv2dTranspose(x, w [kh, kw, out, in], [B, 2H, 2W, out], stride, 'same'): the gradient of the
 * 'same' convolution from the output size back to the input size, i.e. ONNX ConvTranspose with the
 * forward convolution's padding. Weight layout [in, out, kh, kw].
 */
export function emitConvTranspose(g: GraphBuilder, params: HostParams, name: string, x: Feature, stride: number): Feature {
  const w = hostParam(params, name);
  const [kh, kw, cout, cin] = w.shape;
  const outH = x.height * stride;
  const outW = x.width * stride;
  const [top, bottom] = samePadding(outH, kh, stride);
  const [left, right] = samePadding(outW, kw, stride);
  if (stride === 2 && kh === 6 && kw === 6 && top === 2 && bottom === 2 && left === 2 && right === 2) return emitSubPixelConvTranspose6x6(g, name, x, w);
  const values = new Float32Array(w.values.length);
  for (let y = 0; y < kh; y++) {
    for (let xx = 0; xx < kw; xx++) {
      for (let o = 0; o < cout; o++) {
        for (let i = 0; i < cin; i++) values[((i * cout + o) * kh + y) * kw + xx] = w.values[((y * kw + xx) * cout + o) * cin + i];
      }
    }
  }
  const weight = g.initializer(name, [cin, cout, kh, kw], values);
  const y = g.node(
    'ConvTranspose',
    [x.value, weight],
    { kernel_shape: [kh, kw], strides: [stride, stride], pads: [top, left, bottom, right], output_shape: [outH, outW] },
    name.replace(/\.w$/, ''),
  );
  return feature(y, cout, outH, outW);
}

/**
 * The 6×6 stride-2 transposed convolution with padding 2 (the reference decoder's upsampling) as one
 * 3×3 stride-1 convolution with 4·out channels, one group of `out` per output phase (row parity a,
 * column parity b), and DepthToSpace to interleave the phases. Output row 2m + a sums input rows
 * m + 1 − t (t = 0…2) with kernel row a + 2t, i.e. conv kernel row r = 2 − t takes w[a + 4 − 2r].
 * The same sums as ConvTranspose, which ONNX Runtime runs slower than a plain convolution.
 */
function emitSubPixelConvTranspose6x6(g: GraphBuilder, name: string, x: Feature, w: HostTensor): Feature {
  const [, , cout, cin] = w.shape; // [6, 6, out, in]
  const values = new Float32Array(4 * cout * cin * 9);
  for (let o = 0; o < cout; o++) {
    for (let a = 0; a < 2; a++) {
      for (let b = 0; b < 2; b++) {
        const channel = o * 4 + a * 2 + b; // DepthToSpace CRD order
        for (let i = 0; i < cin; i++) {
          for (let r = 0; r < 3; r++) {
            for (let c = 0; c < 3; c++) {
              const ky = a + 4 - 2 * r;
              const kx = b + 4 - 2 * c;
              values[((channel * cin + i) * 3 + r) * 3 + c] = w.values[((ky * 6 + kx) * cout + o) * cin + i];
            }
          }
        }
      }
    }
  }
  const stem = name.replace(/\.w$/, '');
  const phases = g.node(
    'Conv',
    [x.value, g.initializer(`${stem}.phases`, [4 * cout, cin, 3, 3], values)],
    { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 },
    `${stem}.phases`,
  );
  return feature(g.node('DepthToSpace', [phases], { blocksize: 2, mode: 'CRD' }, stem), cout, 2 * x.height, 2 * x.width);
}

/** blocks.groupNorm: per sample and group of consecutive channels, over all positions. */
export function emitGroupNorm(g: GraphBuilder, params: HostParams, prefix: string, x: Feature, maxGroups: number, eps = 1e-5): Feature {
  const groups = groupsFor(x.channels, maxGroups);
  const grouped = g.reshape(x.value, [0, groups, -1]);
  const normed = g.node(
    'InstanceNormalization',
    [grouped, g.initializer(`${prefix}.unit_scale`, [groups], new Float32Array(groups).fill(1)), g.initializer(`${prefix}.zero_shift`, [groups], new Float32Array(groups))],
    { epsilon: { float: eps } },
    `${prefix}.instnorm`,
  );
  const back = g.reshape(normed, [0, x.channels, x.height, x.width]);
  const scale = g.initializer(`${prefix}.g`, [x.channels, 1, 1], hostParam(params, `${prefix}.g`).values);
  const shift = g.initializer(`${prefix}.b`, [x.channels, 1, 1], hostParam(params, `${prefix}.b`).values);
  return { ...x, value: g.add(g.mul(back, scale), shift) };
}

export function emitElu(g: GraphBuilder, x: Feature): Feature {
  return { ...x, value: g.elu(x.value) };
}

export function emitAdd(g: GraphBuilder, a: Feature, b: Feature | Value): Feature {
  return { ...a, value: g.add(a.value, typeof b === 'string' ? b : b.value) };
}

/** blocks.glu: first half of the channels · σ(second half). */
export function emitGlu(g: GraphBuilder, x: Feature): Feature {
  const [a, b] = g.split(x.value, 2, 1);
  return { ...x, channels: x.channels / 2, value: g.mul(a, g.sigmoid(b)) };
}

/** The slice positions [B] as [B, 1, 1, 1], for broadcasting. */
export function emitPositionColumn(g: GraphBuilder, pos: Value): Value {
  return g.reshape(pos, [-1, 1, 1, 1]);
}

/** blocks.conditionBias: pos·w + b per channel, [B, C, 1, 1]. */
export function emitConditionBias(g: GraphBuilder, params: HostParams, prefix: string, posColumn: Value): Value {
  const w = hostParam(params, `${prefix}.w`);
  const b = hostParam(params, `${prefix}.b`);
  const c = w.values.length;
  return g.add(g.mul(posColumn, g.initializer(`${prefix}.w`, [1, c, 1, 1], w.values)), g.initializer(`${prefix}.b`, [1, c, 1, 1], b.values));
}

/** blocks.conditionPlane: [B, 1, h, w] holding each sample's position. */
export function emitPositionPlane(g: GraphBuilder, posColumn: Value, height: number, width: number): Value {
  return g.mul(posColumn, g.initializer('ones_plane', [1, 1, height, width], new Float32Array(height * width).fill(1)));
}

/** Concatenation over channels. */
export function emitConcat(g: GraphBuilder, parts: readonly Feature[]): Feature {
  const [first] = parts;
  return feature(g.concat(parts.map((p) => p.value), 1), parts.reduce((a, p) => a + p.channels, 0), first.height, first.width);
}

/** engine/upsample.upsampleNearest2x: every pixel copied to a 2×2 block. */
export function emitUpsampleNearest2x(g: GraphBuilder, x: Feature): Feature {
  const emptyRoi = g.initializer('empty_roi', [0], new Float32Array(0));
  const scales = g.initializer('scales_2x', [4], Float32Array.of(1, 1, 2, 2));
  const y = g.node('Resize', [x.value, emptyRoi, scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, 'upsample');
  return feature(y, x.channels, 2 * x.height, 2 * x.width);
}

/** blocks.padSpatial. */
export function emitPadSpatial(g: GraphBuilder, x: Feature, [top, bottom, left, right]: Pad4): Feature {
  if (top === 0 && bottom === 0 && left === 0 && right === 0) return x;
  return feature(g.pad(x.value, [0, 0, top, left, 0, 0, bottom, right]), x.channels, x.height + top + bottom, x.width + left + right);
}

/** blocks.shiftDown: drop the last row, zeros enter at the top. */
export function emitShiftDown(g: GraphBuilder, x: Feature): Feature {
  const cut = feature(g.slice(x.value, [0], [x.height - 1], [2]), x.channels, x.height - 1, x.width);
  return emitPadSpatial(g, cut, [1, 0, 0, 0]);
}

/** blocks.shiftRight: drop the last column, zeros enter at the left. */
export function emitShiftRight(g: GraphBuilder, x: Feature): Feature {
  const cut = feature(g.slice(x.value, [0], [x.width - 1], [3]), x.channels, x.height, x.width - 1);
  return emitPadSpatial(g, cut, [0, 0, 1, 0]);
}

/** A constant [1, C, h, w] broadcast to the batch of `like` ([B, …]): [B, C, h, w]. */
export function emitBatchBroadcast(g: GraphBuilder, constant: Value, like: Value, rest: readonly number[]): Value {
  const batch = g.slice(g.shape(like), [0], [1], [0]);
  return g.expand(constant, g.concat([batch, g.ints(rest)], 0));
}

/** Rows [from, to) of the input-channel axis of a conv weight [kh, kw, cin, cout]. */
export function convWeightInputSlice(w: HostTensor, from: number, to: number): HostTensor {
  const [kh, kw, cin, cout] = w.shape;
  const rows = to - from;
  const values = new Float32Array(kh * kw * rows * cout);
  for (let t = 0; t < kh * kw; t++) values.set(w.values.subarray((t * cin + from) * cout, (t * cin + to) * cout), t * rows * cout);
  return { shape: [kh, kw, rows, cout], values };
}

/**
 * conv(oneHot(codes), w) + b for int32 codes [B, h, w] and a weight [kh, kw, K, C], without the
 * one-hot tensor: each tap's output is row `code` of that tap's weight, so the convolution is a
 * gather of [K, taps·C] rows followed by a shifted sum over the taps (K times fewer multiply-adds).
 * Zero padding of the one-hot map is padding of the codes with an extra code K whose rows are zero.
 */
export function emitOneHotConv(
  g: GraphBuilder,
  prefix: string,
  codes: Value,
  grid: { height: number; width: number },
  weight: HostTensor,
  bias: HostTensor | undefined,
  opts: { stride?: number; padding: Pad4 },
): Feature {
  const [kh, kw, k, c] = weight.shape;
  const taps = kh * kw;
  const stride = opts.stride ?? 1;
  const [top, bottom, left, right] = opts.padding;
  // table[code, t·C + o] = w[t, code, o]; row K (the padding code) stays zero.
  const table = new Float32Array((k + 1) * taps * c);
  for (let t = 0; t < taps; t++) {
    for (let code = 0; code < k; code++) table.set(weight.values.subarray((t * k + code) * c, (t * k + code + 1) * c), (code * taps + t) * c);
  }
  const paddedCodes =
    top + bottom + left + right > 0 ? g.node('Pad', [codes, g.ints([0, top, left, 0, bottom, right]), g.initializer('padding_code', [], Int32Array.of(k))], { mode: 'constant' }) : codes;
  const rows = g.gather(g.initializer(`${prefix}.taps`, [k + 1, taps * c], table), paddedCodes); // [B, h', w', taps·C]
  const outH = Math.floor((grid.height + top + bottom - kh) / stride) + 1;
  const outW = Math.floor((grid.width + left + right - kw) / stride) + 1;
  const parts: Value[] = [];
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const t = y * kw + x;
      parts.push(
        g.node('Slice', [
          rows,
          g.ints([y, x, t * c]),
          g.ints([y + (outH - 1) * stride + 1, x + (outW - 1) * stride + 1, (t + 1) * c]),
          g.ints([1, 2, 3]),
          g.ints([stride, stride, 1]),
        ]),
      );
    }
  }
  let sum = parts.length === 1 ? parts[0] : g.node('Sum', parts);
  if (bias !== undefined) sum = g.add(sum, g.initializer(`${prefix}.b`, [c], bias.values));
  return feature(g.transpose(sum, [0, 3, 1, 2]), c, outH, outW);
}

/** Output channels [from, to) of a conv weight [kh, kw, cin, cout]. */
export function convWeightOutputSlice(w: HostTensor, from: number, to: number): HostTensor {
  const [kh, kw, cin, cout] = w.shape;
  const cols = to - from;
  const values = new Float32Array(kh * kw * cin * cols);
  for (let r = 0; r < kh * kw * cin; r++) values.set(w.values.subarray(r * cout + from, r * cout + to), r * cols);
  return { shape: [kh, kw, cin, cols], values };
}

/**
 * glu(conv(x)) as two convolutions, one per half of the output channels, so that no Split is
 * needed and ONNX Runtime can fuse the sigmoid into the gate's convolution.
 */
export function emitConvGlu(g: GraphBuilder, params: HostParams, prefix: string, x: Feature, opts: ConvOptions = {}): Feature {
  const w = hostParam(params, `${prefix}.w`);
  const b = params.get(`${prefix}.b`);
  const half = w.shape[3] / 2;
  const part = (name: string, from: number, to: number): HostParams => {
    const m = new Map<string, HostTensor>([[`${prefix}.${name}.w`, convWeightOutputSlice(w, from, to)]]);
    if (b !== undefined) m.set(`${prefix}.${name}.b`, { shape: [to - from], values: b.values.slice(from, to) });
    return m;
  };
  const value = emitConv(g, part('value', 0, half), `${prefix}.value`, x, opts);
  const gate = emitConv(g, part('gate', half, 2 * half), `${prefix}.gate`, x, opts);
  return { ...value, value: g.mul(value.value, g.sigmoid(gate.value)) };
}

/** What a prior graph over code maps outputs: logits [B, h, w, K] or the NLL of each map's own codes [B, h, w]. */
export type PriorOutput = 'logits' | 'nll';

/**
 * The same NLL from NCHW logits [B, K, h, w]: logsumexp over the code axis minus the code's logit. Training
 * graphs use it: no [B, K, h, w] log-softmax is materialised (ONNX Runtime moves the NHWC transpose behind a
 * log-softmax, which then runs over a non-contiguous axis), and the one-hot comes from one broadcast Equal.
 */
export function emitNllFromLogitsNchw(g: GraphBuilder, logits: Feature, codes: Value): Value {
  const k = logits.channels;
  const codeRange = g.initializer('code_range', [1, k, 1, 1], Int32Array.from({ length: k }, (_, i) => i));
  const oneHot = g.node('Cast', [g.node('Equal', [g.reshape(codes, [-1, 1, logits.height, logits.width]), codeRange])], { to: DataType.FLOAT });
  const lse = g.node('ReduceLogSumExp', [logits.value], { axes: [1], keepdims: 0 });
  return g.sub(lse, g.reduceSum(g.mul(logits.value, oneHot), [1], false));
}

/**
 * src/models/blocks.ts nllFromLogits: −Σ_k log softmax · oneHot over the last (contiguous) axis of logits
 * [B, h, w, K] against code maps [B, h, w] int32 → [B, h, w]. Shared by every prior over code maps.
 */
export function emitNllFromLogits(g: GraphBuilder, logits: Value, codes: Value, k: number): Value {
  const identity = new Float32Array(k * k);
  for (let i = 0; i < k; i++) identity[i * k + i] = 1;
  const oneHotNhwc = g.gather(g.initializer('one_hot_rows', [k, k], identity), codes);
  return g.neg(g.reduceSum(g.mul(g.logSoftmax(logits, 3), oneHotNhwc), [3], false));
}
