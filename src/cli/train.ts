import type { Command } from 'commander';
import { REGISTRY, type Method } from '../methods/index.js';
import { stderrLog } from './common.js';
import { addDropoutOption, addNetworkOptions, commonOptions, parsePreset, type NetworkTrainFlags } from './train-options.js';
import { DEFAULT_VQVAE_BATCH, DEFAULT_VQVAE_EPOCHS } from '../train/defaults.js';

/** `moodlsr train <model>`: the shared VQ-VAE, then each registered method's own subcommands. */
export function registerTrain(program: Command, registry: readonly Method[] = REGISTRY): void {
  const train = program.command('train').description('fit a model on folders of normal volumes');
  addDropoutOption(addNetworkOptions(
    train.command('vqvae').description('train the VQ-VAE on random augmented slices of normal volumes'),
    { epochs: DEFAULT_VQVAE_EPOCHS, batch: DEFAULT_VQVAE_BATCH },
  ))
    .option('--augment <a>', 'paper or none', 'paper')
    .option('--init <dir>', 'warm start from the VQ-VAE in this folder (vqvae.json/.bin, same config; fresh Adam state)')
    .action(async (flags: NetworkTrainFlags) => {
      if (flags.augment !== 'paper' && flags.augment !== 'none') throw new Error('--augment must be paper or none');
      const { trainVqvae } = await import('../train/vqvae-trainer.js');
      const result = await trainVqvae({
        ...commonOptions(flags),
        preset: parsePreset(flags.preset),
        augment: flags.augment,
        ...(flags.dropout !== undefined ? { dropout: flags.dropout } : {}),
        ...(flags.init !== undefined ? { initFrom: flags.init } : {}),
      });
      stderrLog('train vqvae: ')(`${result.state.epoch} epochs done (${result.stopped}); best weights in ${flags.out}/vqvae.json`);
    });
  for (const method of registry) method.registerTrain?.(train);
}
