/**
 * What a scoring method gives the rest of the package. Each method lives in its own folder
 * (src/methods/<id>/), exports one `Method` as the default export of its index.ts, and is registered by
 * one line in src/methods/index.ts; `predict`, `calibrate`, `train` and `leaderboard` read the registry.
 *
 * A method's index.ts must stay light: it is imported whenever the CLI starts, so networks, TF.js and
 * ONNX Runtime are imported inside `load` and inside the commands' actions, never at the top.
 */
import type { Command } from 'commander';
import type { EngineChoice } from '../inference/engine-choice.js';
import type { MoodRegion, MoodTask, Predictor } from '../mood/predictor.js';

/** One name `predict --method` accepts, and the tasks its predictor scores. */
export interface MethodScore {
  readonly name: string;
  readonly tasks: readonly MoodTask[];
}

/** Options of `Method.load` (methods without networks ignore `engine`). */
export interface MethodLoadOptions {
  /** Which of the method's scores to load (one of `Method.scores`' names). */
  readonly score: string;
  /** Inference engine of network methods (default 'auto'). */
  readonly engine?: EngineChoice;
}

export interface Method {
  /** The method's folder name under src/methods/. */
  readonly id: string;
  /** One line for `--help` and the docs. */
  readonly summary: string;
  /** The names `predict --method` accepts for this method (several when one model gives several scores). */
  readonly scores: readonly MethodScore[];
  /** Regions it has shipped weights for. */
  readonly regions: readonly MoodRegion[];
  /** Sub-folder of weights/<region> holding its shipped weights ('' = the region folder itself). */
  readonly shippedSubfolder: string;
  /** The predictor of one of its scores, from a weights folder; every problem names its file. */
  load(weightsDir: string, opts: MethodLoadOptions): Promise<Predictor>;
  /** Adds its `train` subcommands, with their options (absent: nothing to train). */
  registerTrain?(train: Command): void;
  /** Adds its `calibrate` subcommand, with its options (absent: calibrated while training, or not at all). */
  registerCalibrate?(calibrate: Command): void;
}
