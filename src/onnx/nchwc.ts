/**
 * Convolutions in ONNX Runtime's blocked channel layout (NCHWc: channels in blocks of 8 or 16, the
 * CPU's vector width) for graphs whose weights are not constants. ONNX Runtime's own NCHWc
 * transformer rewrites only convolutions with constant weights, so training graphs (weights fed as
 * inputs, input gradients by convolutions with in-graph flipped kernels) miss its direct convolution
 * kernels. `lowerConvsToNchwc` does the rewrite itself, after differentiation:
 *   x → ReorderInput → com.microsoft.nchwc Conv (weights blocked in the graph) → ReorderOutput,
 * for 2-D convolutions whose input channels are a multiple of the block and whose output channels are
 * too, or (`padOutputs`) at least half a block, zero-padded (the VQ-VAE's 16 → 8 input gradients at
 * 128²: 8.9 ms plain, 5.9 + 1.9 ms of reorders blocked, 1 thread). With `nchwInputs`, convolutions
 * with fewer input channels than a block are lowered too, without ReorderInput: the kernel reads
 * plain NCHW input (ONNX Runtime's choice for a network's first layer), with weights in OIHWBo
 * ([O/B, I, kh, kw, B_out]). The blocked weight layout of the others
 * (OIHWBiBo: [O/B, I/B, kh, kw, B_in, B_out], output channels zero-padded to the block) is what the
 * transformer writes for constant weights. `nchwcBlockSize` probes whether the runtime has these
 * kernels (x86 builds of ONNX Runtime) and their block size; without them graphs stay as they are.
 */
import { attr, GraphEditor } from './autodiff/editor.js';
import { inferShapes, type Shape } from './autodiff/shapes.js';
import { DataType, encodeModel, type OnnxModel, type OnnxNode } from './onnx-proto.js';
import type { OrtModule } from './runtime.js';

export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

let probed: Promise<number | null> | null = null;

/** The NCHWc block size of this ONNX Runtime (8 on AVX2, 16 on AVX-512), or null where it has no NCHWc kernels. */
export function nchwcBlockSize(ort: OrtModule): Promise<number | null> {
  probed ??= (async () => {
    const model: OnnxModel = {
      graph: {
        name: 'nchwc_probe',
        nodes: [{ opType: 'ReorderInput', name: 'probe', inputs: ['x'], outputs: ['y'], attributes: { channels_last: attr.int(0) }, domain: NCHWC_DOMAIN }],
        initializers: [],
        inputs: [{ name: 'x', dataType: DataType.FLOAT, shape: [1, 4, 1, 1] }],
        outputs: [{ name: 'y', dataType: DataType.FLOAT, shape: [1, 'blocked', 1, 1] }],
      },
      opset: 17,
      extraOpsets: [{ domain: NCHWC_DOMAIN, version: 1 }],
      producerName: 'moodlsr',
      producerVersion: 'probe',
    };
    try {
      const session = await ort.InferenceSession.create(encodeModel(model), { executionProviders: ['cpu'], logSeverityLevel: 4 });
      // ReorderInput takes channels in fours; the output pads them to one block.
      const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [1, 4, 1, 1]) });
      await session.release();
      const block = out.y!.dims[1]!;
      return block >= 8 ? block : null;
    } catch (err) {
      if (process.env.MOODLSR_DEBUG_NCHWC === '1') console.error(err);
      return null;
    }
  })();
  return probed;
}

export interface NchwcOptions {
  /** Graph inputs' concrete shapes (training graphs run at a fixed batch). */
  readonly inputShapes: Readonly<Record<string, Shape>>;
  readonly blockSize: number;
  /** Also lower convolutions with at least half a block of output channels, zero-padded to a block (default: whole blocks only). */
  readonly padOutputs?: boolean;
  /**
   * Also lower convolutions with fewer input channels than a block and a kernel wider than 1×1, which
   * read their input as plain NCHW (default: no; a 1×1 convolution is already a plain GEMM).
   */
  readonly nchwInputs?: boolean;
}

/** The model with every eligible Conv (group 1, 2-D, input channels a multiple of the block or, with `nchwInputs`, fewer) in NCHWc. */
export function lowerConvsToNchwc(model: OnnxModel, opts: NchwcOptions): { model: OnnxModel; lowered: number } {
  const info = inferShapes(model, opts.inputShapes);
  const b = opts.blockSize;
  const e = new GraphEditor(model);
  let lowered = 0;
  const nodes: OnnxNode[] = [];
  const emit = (opType: string, inputs: readonly string[], attributes: OnnxNode['attributes'], stem: string, domain?: string): string => {
    const out = e.fresh(stem);
    nodes.push({ opType, name: e.fresh(`${stem}_node`), inputs, outputs: [out], attributes, ...(domain !== undefined ? { domain } : {}) });
    return out;
  };
  for (const node of model.graph.nodes) {
    const w = info.shapes.get(node.inputs[1] ?? '');
    const x = info.shapes.get(node.inputs[0] ?? '');
    const eligible =
      node.opType === 'Conv' &&
      (node.domain ?? '') === '' &&
      x?.length === 4 &&
      w?.length === 4 &&
      (node.attributes.group === undefined || (node.attributes.group.kind === 'int' && node.attributes.group.value === 1)) &&
      (node.attributes.auto_pad === undefined || (node.attributes.auto_pad.kind === 'string' && node.attributes.auto_pad.value === 'NOTSET')) &&
      (w[1]! % b === 0 || (opts.nchwInputs === true && w[1]! < b && w[2]! * w[3]! > 1)) &&
      (w[0]! % b === 0 || (opts.padOutputs === true && w[0]! * 2 >= b));
    if (!eligible) {
      nodes.push(node);
      continue;
    }
    const [cout, cin, kh, kw] = w as [number, number, number, number];
    const padded = Math.ceil(cout / b) * b;
    const stem = node.name;
    const pads = (rank: number, axis: number) => e.ints(Array.from({ length: 2 * rank }, (_, i) => (i === rank + axis ? padded - cout : 0)));
    // Fewer input channels than a block: ONNX Runtime's kernel reads the input as plain NCHW, with
    // the weights in OIHWBo ([O/B, I, kh, kw, B_out]).
    const plainInput = cin < b;
    let weight = node.inputs[1]!;
    if (padded !== cout) weight = emit('Pad', [weight, pads(4, 0)], {}, `${stem}/weight_padded`);
    if (plainInput) {
      weight = emit('Reshape', [weight, e.ints([padded / b, b, cin, kh, kw])], {}, `${stem}/weight_split`);
      weight = emit('Transpose', [weight], { perm: attr.ints([0, 2, 3, 4, 1]) }, `${stem}/weight_blocked`);
    } else {
      weight = emit('Reshape', [weight, e.ints([padded / b, b, cin / b, b, kh, kw])], {}, `${stem}/weight_split`);
      weight = emit('Transpose', [weight], { perm: attr.ints([0, 2, 4, 5, 3, 1]) }, `${stem}/weight_blocked`);
    }
    weight = emit('Reshape', [weight, e.ints([padded, cin, kh, kw])], {}, `${stem}/weight_nchwc`);
    const input = plainInput ? node.inputs[0]! : emit('ReorderInput', [node.inputs[0]!], { channels_last: attr.int(0) }, `${stem}/input_nchwc`, NCHWC_DOMAIN);
    const inputs = [input, weight];
    const bias = node.inputs[2];
    if (bias !== undefined && bias !== '') inputs.push(padded !== cout ? emit('Pad', [bias, pads(1, 0)], {}, `${stem}/bias_padded`) : bias);
    const attributes: Record<string, OnnxNode['attributes'][string]> = { kernel_shape: attr.ints([kh, kw]), group: attr.int(1) };
    for (const key of ['strides', 'pads', 'dilations']) if (node.attributes[key] !== undefined) attributes[key] = node.attributes[key]!;
    const blocked = emit('Conv', inputs, attributes, `${stem}/nchwc`, NCHWC_DOMAIN);
    nodes.push({ opType: 'ReorderOutput', name: e.fresh(`${stem}/output_nchw_node`), inputs: [blocked], outputs: [node.outputs[0]!], attributes: { channels: attr.int(cout), channels_last: attr.int(0) }, domain: NCHWC_DOMAIN });
    lowered++;
  }
  if (lowered === 0) return { model, lowered };
  const extraOpsets = [...(model.extraOpsets ?? []).filter((o) => o.domain !== NCHWC_DOMAIN), { domain: NCHWC_DOMAIN, version: 1 }];
  return { model: { ...model, graph: { ...model.graph, nodes, initializers: e.initializers }, extraOpsets }, lowered };
}
