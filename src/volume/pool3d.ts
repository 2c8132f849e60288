import { type Shape3, voxelCount } from './volume.js';

/** Odd window sizes along x, y, z (1 = no pooling along that axis). */
export type Kernel3 = readonly [kx: number, ky: number, kz: number];

/**
 * 3-D min / average pooling, stride 1, output the same shape as the input (x fastest,
 * idx = x + nx·(y + ny·z); a slice stack N×H×W is the shape [W, H, N], see `stackShape`).
 * The window of voxel v along each axis is v − r … v + r with r = (k − 1) / 2, cut at the volume
 * border — out-of-volume voxels never take part:
 * - min pool: minimum over the in-volume part of the window (= padding with +∞), so borders are not
 *   pulled towards 0 or towards an edge value;
 * - average pool: sum over the in-volume part divided by the number of in-volume voxels
 *   (count_include_pad = false), so a constant map stays constant up to the border.
 * Both are separable (x, then y, then z), and cost O(1) per voxel and axis whatever the kernel:
 * van Herk / Gil-Werman running minima for min, float64 prefix sums for the average.
 * Input values are assumed finite (NaN gives unspecified results). Inputs are not modified.
 */
export function minPool3d(data: Float32Array, shape: Shape3, kernel: Kernel3): Float32Array {
  return pool3d(data, shape, kernel, minPoolAxisInPlace);
}

/** See `minPool3d` for the conventions. */
export function avgPool3d(data: Float32Array, shape: Shape3, kernel: Kernel3): Float32Array {
  return pool3d(data, shape, kernel, avgPoolAxisInPlace);
}

/** Largest number of neighbouring lines pooled together along a strided axis (keeps buffers in cache). */
const MAX_LANES = 256;

type AxisPool = (data: Float32Array, outer: number, n: number, inner: number, k: number) => void;

function pool3d(data: Float32Array, shape: Shape3, kernel: Kernel3, poolAxis: AxisPool): Float32Array {
  const [nx, ny, nz] = shape;
  if (data.length !== voxelCount(shape)) {
    throw new RangeError(`pooling: data has ${data.length} values, shape ${shape.join('×')} needs ${voxelCount(shape)}`);
  }
  kernel.forEach((k, axis) => {
    if (!Number.isInteger(k) || k < 1 || k % 2 === 0) {
      throw new RangeError(`pooling kernel sizes must be odd positive integers, got ${k} along axis ${'xyz'[axis]}`);
    }
  });
  const out = data.slice();
  // The data seen as [outer][n][inner] with the pooled axis in the middle.
  if (kernel[0] > 1) poolAxis(out, ny * nz, nx, 1, kernel[0]);
  if (kernel[1] > 1) poolAxis(out, nz, ny, nx, kernel[1]);
  if (kernel[2] > 1) poolAxis(out, 1, nz, nx * ny, kernel[2]);
  return out;
}

/**
 * Min over windows of k along the middle axis of data[outer][n][inner], in place.
 * Gil-Werman on each line padded with r = (k−1)/2 times +∞ at both ends and up to a multiple of k:
 * cut into blocks of k, `suffix[j]` = min from j to the end of its block and `prefix[j]` = min from
 * the start of its block to j; the window padded[i … i+k−1] spans at most two blocks, so its minimum
 * is min(suffix[i], prefix[i+k−1]). About 3 comparisons per voxel for any k.
 * Along strided axes `lanes` neighbouring lines are processed together (buffer row j holds element j
 * of each line), so every inner loop runs over contiguous memory.
 */
function minPoolAxisInPlace(data: Float32Array, outer: number, n: number, inner: number, k: number): void {
  const r = (k - 1) >> 1;
  const padded = Math.ceil((n + 2 * r) / k) * k;
  if (inner === 1) {
    minPoolContiguousLines(data, outer, n, k, r, padded);
    return;
  }
  const lanes = Math.min(inner, MAX_LANES);
  const prefix = new Float32Array(padded * lanes);
  const suffix = new Float32Array(padded * lanes);
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    for (let c0 = 0; c0 < inner; c0 += lanes) {
      const width = Math.min(lanes, inner - c0);
      // prefix[] first holds the padded input.
      prefix.fill(Infinity, 0, r * lanes);
      for (let j = 0; j < n; j++) {
        const src = base + j * inner + c0;
        prefix.set(data.subarray(src, src + width), (j + r) * lanes);
      }
      prefix.fill(Infinity, (n + r) * lanes);
      for (let block = padded - k; block >= 0; block -= k) {
        const last = (block + k - 1) * lanes;
        for (let l = 0; l < width; l++) suffix[last + l] = prefix[last + l];
        for (let row = last - lanes; row >= block * lanes; row -= lanes) {
          const next = row + lanes;
          for (let l = 0; l < width; l++) {
            const a = prefix[row + l];
            const b = suffix[next + l];
            suffix[row + l] = a < b ? a : b;
          }
        }
      }
      for (let block = 0; block < padded; block += k) {
        const end = (block + k) * lanes;
        for (let row = (block + 1) * lanes; row < end; row += lanes) {
          const previous = row - lanes;
          for (let l = 0; l < width; l++) {
            const b = prefix[previous + l];
            if (b < prefix[row + l]) prefix[row + l] = b;
          }
        }
      }
      const shift = (k - 1) * lanes;
      for (let i = 0; i < n; i++) {
        const dst = base + i * inner + c0;
        const left = i * lanes;
        const right = left + shift;
        for (let l = 0; l < width; l++) {
          const a = suffix[left + l];
          const b = prefix[right + l];
          data[dst + l] = a < b ? a : b;
        }
      }
    }
  }
}

/** `minPoolAxisInPlace` for lines that are contiguous in memory (the x axis). */
function minPoolContiguousLines(data: Float32Array, lines: number, n: number, k: number, r: number, padded: number): void {
  const prefix = new Float32Array(padded);
  const suffix = new Float32Array(padded);
  for (let line = 0; line < lines; line++) {
    const base = line * n;
    prefix.fill(Infinity, 0, r);
    prefix.set(data.subarray(base, base + n), r);
    prefix.fill(Infinity, n + r);
    for (let block = padded - k; block >= 0; block -= k) {
      let m = prefix[block + k - 1];
      suffix[block + k - 1] = m;
      for (let j = block + k - 2; j >= block; j--) {
        const a = prefix[j];
        if (a < m) m = a;
        suffix[j] = m;
      }
    }
    for (let block = 0; block < padded; block += k) {
      let m = prefix[block];
      for (let j = block + 1; j < block + k; j++) {
        const a = prefix[j];
        if (a < m) m = a;
        else prefix[j] = m;
      }
    }
    for (let i = 0; i < n; i++) {
      const a = suffix[i];
      const b = prefix[i + k - 1];
      data[base + i] = a < b ? a : b;
    }
  }
}

/**
 * Mean over the in-range part of windows of k along the middle axis, in place: float64 prefix sums
 * along the line, window sum = S[hi + 1] − S[lo], divided by hi − lo + 1.
 */
function avgPoolAxisInPlace(data: Float32Array, outer: number, n: number, inner: number, k: number): void {
  const r = (k - 1) >> 1;
  const inverseCounts = new Float64Array(n);
  for (let i = 0; i < n; i++) inverseCounts[i] = 1 / (Math.min(n - 1, i + r) - Math.max(0, i - r) + 1);
  if (inner === 1) {
    avgPoolContiguousLines(data, outer, n, r, inverseCounts);
    return;
  }
  const lanes = Math.min(inner, MAX_LANES);
  const sums = new Float64Array((n + 1) * lanes);
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    for (let c0 = 0; c0 < inner; c0 += lanes) {
      const width = Math.min(lanes, inner - c0);
      for (let j = 0; j < n; j++) {
        const src = base + j * inner + c0;
        const row = j * lanes;
        const next = row + lanes;
        for (let l = 0; l < width; l++) sums[next + l] = sums[row + l] + data[src + l];
      }
      for (let i = 0; i < n; i++) {
        const top = (i + r < n - 1 ? i + r + 1 : n) * lanes;
        const bottom = (i - r > 0 ? i - r : 0) * lanes;
        const inverseCount = inverseCounts[i];
        const dst = base + i * inner + c0;
        for (let l = 0; l < width; l++) data[dst + l] = (sums[top + l] - sums[bottom + l]) * inverseCount;
      }
    }
  }
}

/** `avgPoolAxisInPlace` for lines that are contiguous in memory (the x axis). */
function avgPoolContiguousLines(data: Float32Array, lines: number, n: number, r: number, inverseCounts: Float64Array): void {
  const sums = new Float64Array(n + 1);
  for (let line = 0; line < lines; line++) {
    const base = line * n;
    let running = 0;
    for (let j = 0; j < n; j++) {
      running += data[base + j];
      sums[j + 1] = running;
    }
    for (let i = 0; i < n; i++) {
      const top = i + r < n - 1 ? i + r + 1 : n;
      const bottom = i - r > 0 ? i - r : 0;
      data[base + i] = (sums[top] - sums[bottom]) * inverseCounts[i];
    }
  }
}
