/** `--engine` of `moodlsr train` and `moodlsr bench train` (resolved by ./engine-choice.ts). */
export type TrainEngineName = 'onnx' | 'tfjs' | 'auto';

export function parseTrainEngine(value: string): TrainEngineName {
  if (value === 'onnx' || value === 'tfjs' || value === 'auto') return value;
  throw new Error(`--engine must be onnx, tfjs or auto, got "${value}"`);
}
