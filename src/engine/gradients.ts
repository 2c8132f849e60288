/**
 * Training support for the wasm backend.
 *
 * tfjs-backend-wasm 4.22 has no `Conv2DBackpropFilter` kernel (so neither conv2d, conv2dTranspose
 * nor fused conv2d can produce a weight gradient), no `UnsortedSegmentSum` (gradient of gather),
 * and its `Conv2DBackpropInput` (input gradient of conv2d, forward of conv2dTranspose) runs about
 * 10× slower than its forward conv2d.
 *
 * The fix works at the kernel level, for the wasm backend only: the three kernels are registered
 * for backend 'wasm' with implementations built from ops the wasm backend runs fast (forward conv2d,
 * strided slices, reverse, transpose, matMul). Because kernels are keyed by backend, the stock
 * gradient registry is untouched: the cpu backend keeps its stock kernels and stays a clean
 * reference, and tfjs-node(-gpu) is never affected. Every path that needs these kernels (the stock
 * Conv2D / Conv2DBackpropInput / FusedConv2D / GatherV2 gradients, conv2dTranspose forward) is
 * fixed at once.
 *
 * The op-level functions are exported so that they can be checked against the stock kernels on
 * the cpu backend directly.
 */
import * as tf from '@tensorflow/tfjs';

type Strides = number | [number, number];
type Padding = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;
type Shape4D = [number, number, number, number];

function conv2dInfo(
  inputShape: Shape4D,
  filterShape: Shape4D,
  strides: Strides,
  pad: Padding,
  dimRoundingMode: RoundingMode,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(inputShape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
}

/**
 * Pads (zeros) or crops `x` along a spatial axis so that the result starts `before` elements
 * ahead of the original index 0 (negative: crops) and has exactly `length` elements.
 */
function padOrCropAxis(x: tf.Tensor4D, axis: 1 | 2, before: number, length: number): tf.Tensor4D {
  const size = x.shape[axis];
  const cropStart = Math.max(0, -before);
  const padBefore = Math.max(0, before);
  const kept = Math.max(0, Math.min(size - cropStart, length - padBefore));
  const padAfter = length - padBefore - kept;
  let out = x;
  if (cropStart > 0 || kept < size) {
    const begin: Shape4D = [0, 0, 0, 0];
    const sliceSize: Shape4D = [-1, -1, -1, -1];
    begin[axis] = cropStart;
    sliceSize[axis] = kept;
    out = tf.slice(out, begin, sliceSize);
  }
  if (padBefore > 0 || padAfter > 0) {
    const paddings: Array<[number, number]> = [[0, 0], [0, 0], [0, 0], [0, 0]];
    paddings[axis] = [padBefore, padAfter];
    out = tf.pad(out, paddings);
  }
  return out;
}

/** Geometry of one stride phase of the input gradient along one axis. */
interface AxisPhase {
  /** First filter tap of this phase (taps r, r+s, r+2s, ...). */
  tap: number;
  /** Number of filter taps in this phase. */
  taps: number;
  /** Input index of the first row this phase produces (in [0, stride)). */
  offset: number;
  /** Number of input rows this phase produces. */
  rows: number;
  /** Index into dy of the first row of the padded dy, minus (taps - 1). */
  firstOutput: number;
}

function axisPhases(inputSize: number, filterSize: number, stride: number, padBefore: number): AxisPhase[] {
  const phases: AxisPhase[] = [];
  for (let tap = 0; tap < stride; tap++) {
    const taps = tap < filterSize ? Math.ceil((filterSize - tap) / stride) : 0;
    // Input row i receives from filter taps k with (i + padBefore - k) divisible by stride.
    // For taps k = tap + stride·t: i = tap - padBefore + stride·q, q = output row + t.
    const qMin = Math.ceil((padBefore - tap) / stride);
    const qMax = Math.floor((inputSize - 1 + padBefore - tap) / stride);
    const rows = Math.max(0, qMax - qMin + 1);
    const offset = tap - padBefore + stride * qMin;
    phases.push({ tap, taps, offset, rows, firstOutput: qMin });
  }
  return phases;
}

/**
 * Gradient of conv2d with respect to its input (same contract as the `Conv2DBackpropInput` kernel,
 * NHWC, dilation 1), computed with stride-1 forward convolutions: one per stride phase, each with
 * the flipped sub-filter of that phase, then interleaved.
 */
export function conv2dInputGradient(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: Shape4D,
  strides: Strides,
  pad: Padding,
  dimRoundingMode?: RoundingMode,
): tf.Tensor4D {
  return tf.tidy((): tf.Tensor4D => {
    const info = conv2dInfo(inputShape, filter.shape, strides, pad, dimRoundingMode);
    const [batch, height, width, inChannels] = inputShape;
    const [filterH, filterW] = filter.shape;
    const sh = info.strideHeight;
    const sw = info.strideWidth;
    const phasesH = axisPhases(height, filterH, sh, info.padInfo.top);
    const phasesW = axisPhases(width, filterW, sw, info.padInfo.left);
    const cellsH = Math.ceil(height / sh);
    const cellsW = Math.ceil(width / sw);

    const byOffset = (phases: AxisPhase[]): AxisPhase[] => [...phases].sort((a, b) => a.offset - b.offset);
    const rowsOfBlocks: tf.Tensor4D[] = [];
    for (const ph of byOffset(phasesH)) {
      const blocks: tf.Tensor4D[] = [];
      for (const pw of byOffset(phasesW)) {
        blocks.push(phaseBlock(dy, filter, ph, pw, sh, sw, batch, inChannels, cellsH, cellsW));
      }
      // [B, cellsH, cellsW, sw·C] -> each input column offset interleaved along width.
      rowsOfBlocks.push(tf.concat(blocks, 3));
    }
    // [B, cellsH, sh·cellsW·sw·C] then reshape to the full interleaved grid.
    const grid = rowsOfBlocks.length === 1
      ? rowsOfBlocks[0]
      : tf.concat(rowsOfBlocks.map((r) => tf.reshape(r, [batch, cellsH, 1, cellsW * sw * inChannels])), 2);
    const full = tf.reshape(grid, [batch, cellsH * sh, cellsW * sw, inChannels]) as tf.Tensor4D;
    return full.shape[1] === height && full.shape[2] === width
      ? full
      : tf.slice(full, [0, 0, 0, 0], [batch, height, width, inChannels]);
  });
}

function phaseBlock(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  ph: AxisPhase,
  pw: AxisPhase,
  sh: number,
  sw: number,
  batch: number,
  inChannels: number,
  cellsH: number,
  cellsW: number,
): tf.Tensor4D {
  if (ph.taps === 0 || pw.taps === 0 || ph.rows === 0 || pw.rows === 0) {
    return tf.zeros([batch, cellsH, cellsW, inChannels]);
  }
  const [filterH, filterW, , outChannels] = filter.shape;
  // Sub-filter of this phase, flipped in space, with in/out channels swapped: [th, tw, Cout, Cin].
  const sub = tf.stridedSlice(filter, [ph.tap, pw.tap, 0, 0], [filterH, filterW, inChannels, outChannels], [sh, sw, 1, 1]) as tf.Tensor4D;
  const kernel = tf.transpose(tf.reverse(sub, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  // Input row q of this phase (q from firstOutput) = Σ_t dy[q - t]·sub[t]: a valid correlation
  // of dy, shifted by (taps - 1), with the flipped sub-filter.
  let padded = padOrCropAxis(dy, 1, ph.taps - 1 - ph.firstOutput, ph.rows + ph.taps - 1);
  padded = padOrCropAxis(padded, 2, pw.taps - 1 - pw.firstOutput, pw.rows + pw.taps - 1);
  const block = tf.conv2d(padded, kernel, 1, 'valid');
  // Rows of this phase sit at cell index 0..rows-1 of the interleaved grid (offset < stride).
  return tf.pad(block, [[0, 0], [0, cellsH - ph.rows], [0, cellsW - pw.rows], [0, 0]]);
}

/**
 * Gradient of conv2d with respect to its filter (same contract as the `Conv2DBackpropFilter`
 * kernel, NHWC, dilation 1), computed as one forward convolution: the input with batch and
 * channels swapped, convolved with dy as the filter (dilated by the stride).
 */
export function conv2dFilterGradient(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: Shape4D,
  strides: Strides,
  pad: Padding,
  dimRoundingMode?: RoundingMode,
): tf.Tensor4D {
  return tf.tidy(() => {
    const info = conv2dInfo(x.shape, filterShape, strides, pad, dimRoundingMode);
    const [filterH, filterW, inChannels, outChannels] = filterShape;
    const sh = info.strideHeight;
    const sw = info.strideWidth;
    const [, outH, outW] = dy.shape;
    // Exactly the padded input rows the forward pass read.
    let xPadded = padOrCropAxis(x, 1, info.padInfo.top, sh * (outH - 1) + filterH);
    xPadded = padOrCropAxis(xPadded, 2, info.padInfo.left, sw * (outW - 1) + filterW);
    const xByChannel = tf.transpose(xPadded, [3, 1, 2, 0]) as tf.Tensor4D; // [Cin, Hp, Wp, B]
    const dyAsFilter = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [Ho, Wo, B, Cout]
    const dilations: [number, number] = [sh, sw];
    const g = tf.conv2d(xByChannel, dyAsFilter, 1, 'valid', 'NHWC', dilations); // [Cin, kh, kw, Cout]
    const out = tf.transpose(g, [1, 2, 0, 3]) as tf.Tensor4D;
    if (out.shape[0] !== filterH || out.shape[1] !== filterW || out.shape[2] !== inChannels || out.shape[3] !== outChannels) {
      throw new Error(`conv2dFilterGradient: internal shape mismatch ${out.shape} vs ${filterShape}`);
    }
    return out;
  });
}

/** Gradient of gather: sums rows of `x` into `numSegments` segments, via oneHot + matMul. */
export function unsortedSegmentSumViaMatMul(x: tf.Tensor, segmentIds: tf.Tensor, numSegments: number): tf.Tensor {
  return tf.tidy(() => {
    const rows = segmentIds.size;
    const rest = x.shape.slice(segmentIds.rank);
    const width = rest.reduce((a, b) => a * b, 1);
    const flat = tf.reshape(x, [rows, width]);
    const ids = tf.cast(tf.reshape(segmentIds, [rows]), 'int32') as tf.Tensor1D;
    const assign = tf.oneHot(ids, numSegments); // out-of-range ids give zero rows, as the kernel drops them
    const summed = tf.matMul(assign, tf.cast(flat, 'float32'), true, false);
    const result = tf.reshape(summed, [numSegments, ...rest]);
    return x.dtype === 'int32' ? tf.cast(tf.round(result), 'int32') : result;
  });
}

// ---------------------------------------------------------------------------------------------
// Kernel registration

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** Kernel inputs are tensors when called from ops; wrap raw TensorInfos (backend-internal calls). */
function inputTensor<T extends tf.Tensor>(info: tf.TensorInfo, backend: tf.KernelBackend): T {
  if (info instanceof tf.Tensor) return info as T;
  backend.incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info, backend) as T;
}

function runWrapped(args: KernelArgs, body: (inputs: Record<string, tf.Tensor>) => tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const wrapped: Record<string, tf.Tensor> = {};
    for (const [name, info] of Object.entries(args.inputs)) {
      if (info !== undefined) wrapped[name] = inputTensor(info, args.backend as tf.KernelBackend);
    }
    return body(wrapped);
  });
}

function assertChannelsLast(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`${kernel} replacement supports NHWC only, got dataFormat ${String(dataFormat)}`);
  }
}

const filterGradKernel: tf.KernelFunc = (args) =>
  runWrapped(args, (inputs) => {
    const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    assertChannelsLast('Conv2DBackpropFilter', attrs.dataFormat);
    return conv2dFilterGradient(inputs.x as tf.Tensor4D, inputs.dy as tf.Tensor4D, attrs.filterShape, attrs.strides, attrs.pad, attrs.dimRoundingMode);
  });

const inputGradKernel: tf.KernelFunc = (args) =>
  runWrapped(args, (inputs) => {
    const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    assertChannelsLast('Conv2DBackpropInput', attrs.dataFormat);
    return conv2dInputGradient(inputs.dy as tf.Tensor4D, inputs.filter as tf.Tensor4D, attrs.inputShape, attrs.strides, attrs.pad, attrs.dimRoundingMode);
  });

const segmentSumKernel: tf.KernelFunc = (args) =>
  runWrapped(args, (inputs) => {
    const attrs = args.attrs as unknown as tf.UnsortedSegmentSumAttrs;
    return unsortedSegmentSumViaMatMul(inputs.x, inputs.segmentIds, attrs.numSegments);
  });

/** Which backends have had the training kernels installed by this module. */
const installedFor = new Set<string>();

/**
 * Registers the replacement kernels for `backendName` (default 'wasm'): `Conv2DBackpropFilter` and
 * `UnsortedSegmentSum` where the backend lacks them, and `Conv2DBackpropInput` replaced by the
 * forward-conv version (much faster on wasm). Idempotent. Returns the kernel names it registered.
 * Intended for wasm; on cpu the stock kernels are complete and are the reference.
 */
export function installTrainingKernels(backendName = 'wasm'): string[] {
  if (installedFor.has(backendName)) return [];
  const registered: string[] = [];
  const install = (kernelName: string, kernelFunc: tf.KernelFunc, replaceExisting: boolean): void => {
    const existing = tf.getKernel(kernelName, backendName);
    if (existing !== undefined && !replaceExisting) return;
    if (existing !== undefined) tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel({ kernelName, backendName, kernelFunc });
    registered.push(kernelName);
  };
  install(tf.Conv2DBackpropFilter, filterGradKernel, false);
  install(tf.UnsortedSegmentSum, segmentSumKernel, false);
  install(tf.Conv2DBackpropInput, inputGradKernel, backendName === 'wasm');
  installedFor.add(backendName);
  return registered;
}
