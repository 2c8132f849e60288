import type { Command } from 'commander';
import { REGISTRY, type Method } from '../methods/index.js';

export { parseSliceSelection } from './calibrate-options.js';

/** `moodlsr calibrate <method>`: thresholds and score maps fitted on held-out normal volumes, stored with the weights. */
export function registerCalibrate(program: Command, registry: readonly Method[] = REGISTRY): void {
  const calibrate = program.command('calibrate').description('fit score thresholds and calibrations on held-out normal volumes');
  for (const method of registry) method.registerCalibrate?.(calibrate);
}
