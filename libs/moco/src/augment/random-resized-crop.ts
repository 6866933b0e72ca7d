import type { Rng } from '../rng.js';

/** A crop in integer pixels, as torchvision's `RandomResizedCrop.get_params` returns it. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Python's round() (halves to even), so crop sizes come out as torchvision's. */
function roundHalfEven(v: number): number {
  const floor = Math.floor(v);
  if (v - floor !== 0.5) return Math.round(v);
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * torchvision's RandomResizedCrop.get_params. Up to 10 attempts, each drawing the area fraction
 * (uniform in `scale`) then the log aspect ratio (uniform in log `ratio`); the first crop that fits
 * draws its top then its left offset. If none fits: the centre crop, clamped to the ratio range.
 */
export function sampleCrop(
  rng: Rng,
  height: number,
  width: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
): CropBox {
  const area = height * width;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = roundHalfEven(w / ratio[0]);
  else if (inRatio > ratio[1]) w = roundHalfEven(h * ratio[1]);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/**
 * First and last sample position (in pixel centres) along one axis when `length` pixels from
 * `start` are resized to `size` samples. Downscaling uses torch's half-pixel mapping (sample r at
 * start + (r + 0.5) * length / size - 0.5), which is linear, so a crop box reproduces it exactly.
 * Upscaling: torch clamps the outermost samples to the crop's edge pixels, which a linear box cannot;
 * the box then spans exactly the edge pixel centres (align-corners), which moves each sample by less
 * than half a pixel and never reads outside the crop.
 */
function sampleSpan(start: number, length: number, size: number): [number, number] {
  const inset = Math.max(0, (length / size - 1) / 2);
  return [start + inset, start + length - 1 - inset];
}

/** Per output sample along one axis: the two source pixels it blends and the second one's weight. */
export interface AxisSamples {
  lo: Int32Array;
  hi: Int32Array;
  weight: Float32Array;
}

/**
 * The `size` samples from `from` to `to` (pixel centres; `from` > `to` runs backwards, which is how a
 * flip costs nothing) on an axis of `n` pixels. Rounding can put a sample a hair past an edge pixel:
 * it then reads the edge.
 */
function axisSamples(from: number, to: number, size: number, n: number): AxisSamples {
  const lo = new Int32Array(size);
  const hi = new Int32Array(size);
  const weight = new Float32Array(size);
  const step = (to - from) / (size - 1);
  for (let r = 0; r < size; r++) {
    const at = Math.min(n - 1, Math.max(0, from + r * step));
    lo[r] = Math.floor(at);
    hi[r] = Math.ceil(at);
    weight[r] = at - lo[r]!;
  }
  return { lo, hi, weight };
}

/** The rows and columns that crop `crop` (mirrored left-right if `flip`) and resize it to size x size. */
export function cropSamples(crop: CropBox, flip: boolean, size: number, height: number, width: number): { rows: AxisSamples; cols: AxisSamples } {
  if (!Number.isInteger(size) || size < 2) throw new Error(`cropSamples: size must be an integer >= 2, got ${size}`);
  const [y1, y2] = sampleSpan(crop.top, crop.height, size);
  const [x1, x2] = sampleSpan(crop.left, crop.width, size);
  return { rows: axisSamples(y1, y2, size, height), cols: axisSamples(flip ? x2 : x1, flip ? x1 : x2, size, width) };
}

/**
 * Bilinear crop-and-resize of one HWC image (values from `offset` in `src`) into `out` from `outOffset`,
 * size x size x channels, each value times `scale`. No antialiasing, unlike torchvision's default
 * `antialias=True`; that only matters when a crop is shrunk.
 */
export function resizedCrop(
  src: ArrayLike<number>,
  offset: number,
  shape: { height: number; width: number; channels: number },
  samples: { rows: AxisSamples; cols: AxisSamples },
  out: Float32Array,
  outOffset: number,
  scale = 1,
): void {
  const { width, channels } = shape;
  const { rows, cols } = samples;
  const size = rows.lo.length;
  let o = outOffset;
  for (let r = 0; r < size; r++) {
    const top = offset + rows.lo[r]! * width * channels;
    const bottom = offset + rows.hi[r]! * width * channels;
    const wy = rows.weight[r]!;
    for (let q = 0; q < size; q++) {
      const left = cols.lo[q]! * channels;
      const right = cols.hi[q]! * channels;
      const wx = cols.weight[q]!;
      for (let c = 0; c < channels; c++) {
        const tl = src[top + left + c]!;
        const bl = src[bottom + left + c]!;
        const t = tl + (src[top + right + c]! - tl) * wx;
        const b = bl + (src[bottom + right + c]! - bl) * wx;
        out[o++] = (t + (b - t) * wy) * scale;
      }
    }
  }
}
