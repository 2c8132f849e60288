/**
 * The `vae-*` names `predict --method` accepts, each with the sample score and/or pixel map it gives
 * (kept apart from ./model.ts so that the registry can list them without loading TF.js).
 */
import type { MoodTask } from '../../mood/predictor.js';
import type { VaePixelMap, VaeSampleScore } from './score.js';

export interface VaeMethod {
  readonly name: string;
  readonly sample?: VaeSampleScore;
  readonly pixel?: VaePixelMap;
}

export const VAE_METHODS: readonly VaeMethod[] = [
  { name: 'vae-rec', sample: 'rec', pixel: 'rec' },
  { name: 'vae-elbo', sample: 'elbo' },
  { name: 'vae-kl', sample: 'kl' },
  { name: 'vae-elbograd', pixel: 'elbograd' },
  { name: 'vae-klgrad', pixel: 'klgrad' },
  { name: 'vae-recgrad', pixel: 'recgrad' },
  { name: 'vae-combi', pixel: 'combi' },
];

export function vaeMethod(name: string): VaeMethod {
  const m = VAE_METHODS.find((x) => x.name === name);
  if (m === undefined) throw new Error(`unknown VAE method ${name} (known: ${VAE_METHODS.map((x) => x.name).join(', ')})`);
  return m;
}

/** The tasks a `vae-*` name scores: sample when it has a sample score, pixel when it has a pixel map. */
export function vaeMethodTasks(method: VaeMethod): MoodTask[] {
  const tasks: MoodTask[] = [];
  if (method.sample !== undefined) tasks.push('sample');
  if (method.pixel !== undefined) tasks.push('pixel');
  return tasks;
}
