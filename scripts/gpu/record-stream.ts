/** What the GPU batch producers share: float16 packing and back-pressured writes to stdout. */
import { writeFloat16Array } from '../../src/io/float16.js';

/** Little-endian IEEE half floats (the weights packer's rounding: nearest, ties to even). */
export function halves(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 2);
  writeFloat16Array(new DataView(out.buffer, out.byteOffset, out.byteLength), 0, values);
  return out;
}

/** Writes a record to stdout, waiting for the pipe to drain when it is full. */
export async function writeAll(chunk: Buffer): Promise<void> {
  if (!process.stdout.write(chunk)) await new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
}
