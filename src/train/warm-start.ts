/**
 * Warm starts: the flat weights of a saved model (`<dir>/<name>.json/.bin`) in a training run's layout,
 * refused when its config differs from the run's (compared through `configKey`), with a label naming
 * the folder and the weights' hash for the run's fingerprint and record.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InputFileError } from '../errors.js';
import { binaryPath, loadModel, manifestPath } from '../models/weights.js';
import { disposeParams } from '../models/params.js';
import { flattenParams } from './loop-worker.js';
import type { ParamLayout } from './param-layout.js';

export interface WarmStart {
  readonly weights: Float32Array;
  readonly label: string;
}

/**
 * `fresh` (flat weights in `layout` order): parameters of this run that the saved model lacks keep
 * their fresh values (a head added to a trained trunk); without it every parameter must be saved.
 */
export function loadWarmStart<C>(dir: string, name: string, kind: string, cfg: C, layout: ParamLayout, configKey: (c: C) => string = (c) => JSON.stringify(c), fresh?: Float32Array): WarmStart {
  const loaded = loadModel<C>(dir, name, kind);
  try {
    const a = configKey(loaded.config);
    const b = configKey(cfg);
    if (a !== b) throw new InputFileError(manifestPath(dir, name), `its config differs from this run's: ${a} vs ${b}`);
    const hash = createHash('sha256').update(readFileSync(binaryPath(dir, name))).digest('hex').slice(0, 16);
    if (fresh === undefined) return { weights: flattenParams(loaded.params, layout), label: `${dir}:${hash}` };
    if (fresh.length !== layout.total) throw new RangeError(`fresh weights: ${fresh.length} values, the layout ${layout.total}`);
    const weights = fresh.slice();
    const added: string[] = [];
    for (const e of layout.entries) {
      const v = loaded.params[e.name];
      if (v === undefined) {
        added.push(e.name);
        continue;
      }
      if (v.size !== e.size) throw new InputFileError(manifestPath(dir, name), `parameter ${e.name} has ${v.size} values, this run's ${e.size}`);
      weights.set(v.dataSync() as Float32Array, e.offset);
    }
    return { weights, label: added.length === 0 ? `${dir}:${hash}` : `${dir}:${hash}+fresh(${added.join(',')})` };
  } finally {
    disposeParams(loaded.params);
  }
}
