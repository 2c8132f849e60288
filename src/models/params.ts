/**
 * Flat parameter stores: a model's parameters are `Record<name, tf.Variable>` with stable dotted
 * names ("enc.level0.block0.conv1.w"). The list of `ParamSpec`s built from a config is the single
 * source of truth for names, shapes, initialisation and (for convolutions) FLOPs; the weights
 * loader validates files against it.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../engine/random.js';

export type ParamMap = Record<string, tf.Variable>;

export type ParamInit =
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; lo: number; hi: number }
  | { kind: 'zeros' }
  | { kind: 'ones' };

export interface ParamSpec {
  name: string;
  shape: number[];
  init: ParamInit;
  /** FLOPs of one forward use of this weight per sample (2 × multiply-adds), when it is a conv/matMul weight. */
  flops?: number;
}

/** Collects specs in order and refuses duplicate names. */
export class ParamSpecList {
  readonly specs: ParamSpec[] = [];
  private readonly names = new Set<string>();

  add(name: string, shape: number[], init: ParamInit, flops?: number): void {
    if (this.names.has(name)) throw new Error(`duplicate parameter name ${name}`);
    this.names.add(name);
    this.specs.push(flops === undefined ? { name, shape, init } : { name, shape, init, flops });
  }

  /**
   * A convolution weight [kh, kw, cin, cout] (LeCun-normal, std = gain/√fan-in) with an optional
   * zero bias; `outPositions` = output pixels per sample, for the FLOP count.
   */
  conv(prefix: string, kh: number, kw: number, cin: number, cout: number, outPositions: number, bias: boolean, gain = 1): void {
    this.add(`${prefix}.w`, [kh, kw, cin, cout], { kind: 'normal', std: gain / Math.sqrt(kh * kw * cin) }, 2 * outPositions * kh * kw * cin * cout);
    if (bias) this.add(`${prefix}.b`, [cout], { kind: 'zeros' });
  }

  /** Scale (ones) and shift (zeros) of a normalisation over `channels`. */
  norm(prefix: string, channels: number): void {
    this.add(`${prefix}.g`, [channels], { kind: 'ones' });
    this.add(`${prefix}.b`, [channels], { kind: 'zeros' });
  }
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fillValues(spec: ParamSpec, seed: number | string): Float32Array {
  const n = sizeOf(spec.shape);
  const out = new Float32Array(n);
  const init = spec.init;
  if (init.kind === 'ones') out.fill(1);
  else if (init.kind === 'normal') {
    // Per-parameter stream: a parameter's values do not depend on which other parameters exist.
    const rng = createRng(`${seed}:${spec.name}`);
    for (let i = 0; i < n; i++) {
      // Truncate at 2σ by redrawing, like a truncated normal.
      let v = rng.normal();
      while (Math.abs(v) > 2) v = rng.normal();
      out[i] = v * init.std;
    }
  } else if (init.kind === 'uniform') {
    const rng = createRng(`${seed}:${spec.name}`);
    for (let i = 0; i < n; i++) out[i] = rng.uniform(init.lo, init.hi);
  }
  return out;
}

/** A trainable variable holding `values` (the temporary tensor is released). */
export function variableFrom(values: Float32Array, shape: number[]): tf.Variable {
  const t = tf.tensor(values, shape, 'float32');
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

/** Fresh trainable variables for every spec; the same seed gives the same bytes. */
export function initParams(specs: readonly ParamSpec[], seed: number | string): ParamMap {
  const params: ParamMap = {};
  for (const spec of specs) {
    // No variable name: tfjs variable names are global, and two models may be alive at once.
    params[spec.name] = variableFrom(fillValues(spec, seed), spec.shape);
  }
  return params;
}

export function disposeParams(params: ParamMap): void {
  for (const v of Object.values(params)) v.dispose();
}

export function countParams(specs: readonly ParamSpec[]): number {
  return specs.reduce((a, s) => a + sizeOf(s.shape), 0);
}

export function sumFlops(specs: readonly ParamSpec[], prefix = ''): number {
  return specs.reduce((a, s) => a + (s.name.startsWith(prefix) ? (s.flops ?? 0) : 0), 0);
}

/**
 * Differences between the expected specs and what a store actually holds, as readable lines
 * (empty when names and shapes agree).
 */
export function describeMismatch(specs: readonly ParamSpec[], actual: ReadonlyMap<string, readonly number[]>): string[] {
  const problems: string[] = [];
  const expected = new Map(specs.map((s) => [s.name, s.shape] as const));
  for (const [name, shape] of expected) {
    const got = actual.get(name);
    if (got === undefined) problems.push(`missing tensor ${name} [${shape.join(',')}]`);
    else if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      problems.push(`tensor ${name} has shape [${got.join(',')}], the config implies [${shape.join(',')}]`);
    }
  }
  for (const name of actual.keys()) if (!expected.has(name)) problems.push(`unexpected tensor ${name}`);
  return problems;
}

/** Reads a parameter, with a clear error when a forward function asks for one that does not exist. */
export function param(params: ParamMap, name: string): tf.Variable {
  const v = params[name];
  if (v === undefined) throw new Error(`parameter ${name} is missing from the parameter map`);
  return v;
}
