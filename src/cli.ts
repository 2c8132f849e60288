#!/usr/bin/env node
/**
 * The moodlsr command line. Each capability registers one subcommand from src/cli/.
 * Exit codes: 0 success, 1 usage or fatal error, 2 some inputs failed (the others were processed).
 */
import { readFileSync } from 'node:fs';
import { Command, Help, type Option } from 'commander';
import { describeError } from './errors.js';
import { registerInfo } from './cli/info.js';
import { registerInject } from './cli/inject.js';
import { registerEval } from './cli/eval.js';
import { registerPopulation } from './cli/population.js';
import { registerTrain } from './cli/train.js';
import { registerPredict } from './cli/predict.js';
import { registerLeaderboard } from './cli/leaderboard.js';
import { registerPhantom } from './cli/phantom.js';
import { registerCalibrate } from './cli/calibrate.js';
import { registerWeights } from './cli/weights.js';
import { registerBench } from './cli/bench.js';
import { REGISTRY, type Method } from './methods/index.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  usage error or fatal error (nothing or not everything could start)
  2  some inputs failed, the others were processed (predict: cases; leaderboard: entries)
  3  a metric fell by more than --tolerance against --baseline (eval, leaderboard)
  130, 143  stopped by SIGINT or SIGTERM (temporary files removed)
`;

/** Option descriptions end in "(required)" for mandatory options, which commander does not mark. */
function optionDescription(option: Option): string {
  const text = Help.prototype.optionDescription.call(new Help(), option);
  return option.mandatory ? `${text} (required)` : text;
}

export function buildProgram(registry: readonly Method[] = REGISTRY): Command {
  const program = new Command();
  program
    .name('moodlsr')
    .description('Anomaly detection in 3-D medical images by latent space restoration (MOOD challenge)')
    .version(packageVersion())
    .showHelpAfterError()
    .allowExcessArguments(false)
    .configureHelp({ optionDescription })
    .addHelpText('after', EXIT_CODES_HELP);
  registerInfo(program);
  registerInject(program);
  registerEval(program);
  registerPopulation(program);
  registerTrain(program, registry);
  registerPredict(program, registry);
  registerLeaderboard(program, registry);
  registerPhantom(program);
  registerCalibrate(program, registry);
  registerWeights(program);
  registerBench(program);
  for (const command of program.commands) command.addHelpText('after', EXIT_CODES_HELP);
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`moodlsr: ${describeError(err)}\n`);
    process.exitCode = 1;
  });
