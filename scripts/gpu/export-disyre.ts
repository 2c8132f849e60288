/**
 * Exports what the GPU trainer (scripts/gpu/train_disyre.py) needs to train the DISYRE U-Net outside
 * Node, and imports what it trained back:
 *
 *   node dist/scripts/gpu/export-disyre.js export --init weights/brain/disyre --out .gpu/disyre
 *     → train.onnx (the ONNX Runtime engine's training graph: loss, rec, restored, bce; parameters as
 *       inputs), bindings.json + bindings.bin (each parameter input's index map into the flat weights
 *       and its constants: src/onnx/autodiff/trainable.ts), start.f32 (the flat start weights),
 *       meta.json (config, layout, the start folder's label)
 *   node dist/scripts/gpu/export-disyre.js import --flat weights.f32 --meta .gpu/disyre/meta.json \
 *     --record record.json --out DIR
 *     → DIR/disyre.json/.bin, the same format the CPU trainer saves (loadable by --init, calibrate, ship)
 */
import { exportDisyreForGpu, importDisyreFromGpu } from './disyre-io.js';
import { option } from '../cli-options.js';

const log = (line: string): void => {
  process.stderr.write(`export-disyre: ${line}\n`);
};
const verb = process.argv[2];
const job = verb === 'export' ? exportDisyreForGpu(option('init'), option('out'), log) : verb === 'import' ? importDisyreFromGpu(option('flat'), option('meta'), option('record'), option('out'), log) : Promise.reject(new Error('usage: export-disyre export|import …'));
job.catch((err: unknown) => {
  process.stderr.write(`export-disyre: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
