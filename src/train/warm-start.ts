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

export function loadWarmStart<C>(dir: string, name: string, kind: string, cfg: C, layout: ParamLayout, configKey: (c: C) => string = (c) => JSON.stringify(c)): WarmStart {
  const loaded = loadModel<C>(dir, name, kind);
  try {
    const a = configKey(loaded.config);
    const b = configKey(cfg);
    if (a !== b) throw new InputFileError(manifestPath(dir, name), `its config differs from this run's: ${a} vs ${b}`);
    const weights = flattenParams(loaded.params, layout);
    const label = `${dir}:${createHash('sha256').update(readFileSync(binaryPath(dir, name))).digest('hex').slice(0, 16)}`;
    return { weights, label };
  } finally {
    disposeParams(loaded.params);
  }
}
