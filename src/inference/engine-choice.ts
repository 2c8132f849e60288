/** Names of the inference engines, without loading any of them (for CLI parsing). */
export type EngineName = 'tfjs' | 'onnx';
export type EngineChoice = EngineName | 'auto';
export const ENGINE_CHOICES: readonly EngineChoice[] = ['auto', 'onnx', 'tfjs'];

export const ENGINE_HELP = 'inference engine of the networks: auto (ONNX Runtime when it loads, else TF.js), onnx, tfjs';

export function parseEngineChoice(value: string): EngineChoice {
  if (!(ENGINE_CHOICES as readonly string[]).includes(value)) throw new Error(`--engine must be one of ${ENGINE_CHOICES.join(', ')}, got "${value}"`);
  return value as EngineChoice;
}
