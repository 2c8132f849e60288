import type { Volume } from '../volume/volume.js';

export type MoodTask = 'sample' | 'pixel';
/** MOOD's two datasets; the CLI and the entry scripts use the organisers' short name "abdom". */
export type MoodRegion = 'brain' | 'abdom';

/** What a predictor is told about the case it scores. */
export interface CaseContext {
  /** The input file's name, e.g. "toy_0.nii.gz". */
  readonly name: string;
  /** Seed for this case: derived from the run's seed and the case name, so sharding changes nothing. */
  readonly seed: number;
  readonly log: (line: string) => void;
}

/**
 * A method that scores volumes. Raw outputs may be any finite numbers; the contract layer checks them.
 * Pixel maps must have the input's shape and values in [0, 1]; sample scores must be in [0, 1].
 */
export interface Predictor {
  readonly name: string;
  readonly tasks: readonly MoodTask[];
  sampleScore?(volume: Volume, ctx: CaseContext): Promise<number>;
  pixelScore?(volume: Volume, ctx: CaseContext): Promise<Float32Array>;
  /** Releases models, workers and tensors. */
  dispose?(): Promise<void>;
}
