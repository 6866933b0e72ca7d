import { status } from '@grpc/grpc-js';
import { decodeImage, DatasetError, readImageSize } from '@moco/data';
import type { CheckpointTransform, EmbedRequest } from '@moco/models';
import type { DecodeBudget } from './decode-budget.js';
import { EmbedError } from './errors.js';

const invalid = (message: string) => new EmbedError(status.INVALID_ARGUMENT, message);

/** How many images a request carries; checks it carries images one way and within the limit. */
export function imageCount(request: EmbedRequest, maxImages: number): number {
  const images = request.images ?? [];
  const tensor = request.tensor;
  if (images.length > 0 && tensor) throw invalid('set either images or tensor, not both');
  const n = tensor ? (tensor.shape[0] ?? 0) : images.length;
  if (n === 0) throw invalid('no images: set images (encoded PNG/JPEG) or tensor (shape [N, H, W, C])');
  if (n > maxImages) throw new EmbedError(status.RESOURCE_EXHAUSTED, `${n} images in one request; the limit is ${maxImages}`);
  return n;
}

/**
 * A request's images on their way to the model, plain arrays that move to the forward-pass thread
 * (which owns tfjs) without a copy. `pixels`: [n, size, size, channels] values in [0, 255] still to go
 * through the evaluation transform, which the thread applies once per forward pass to all of them
 * together (per-request tfjs ops on tiny tensors cost more than the work they do). `input`: the model
 * input itself, float32 (a preprocessed tensor). `resize`: raw values [n, height, width, channels] of
 * another size, resized and transformed there.
 */
export type ModelInput =
  | { kind: 'pixels'; count: number; data: Uint8Array | Float32Array }
  | { kind: 'input'; count: number; data: Float32Array }
  | { kind: 'resize'; count: number; data: Float32Array; height: number; width: number };

/**
 * The model input of a request, [N, size, size, channels]: the checkpoint's evaluation transform
 * applied the way training applied it. Encoded images are decoded to the transform's size and
 * channels as datasets are (libs/data, centre crop to square), then (in the batcher) scaled and normalised.
 */
export async function preprocess(
  request: EmbedRequest,
  transform: CheckpointTransform,
  opts: { maxPixels: number; budget: DecodeBudget },
): Promise<ModelInput> {
  const { size, channels } = transform;
  if (request.tensor) return fromTensor(request.tensor, transform);
  const images = request.images ?? [];
  // Headers first: what decoding would cost is refused or waited for before any pixel is decoded.
  const sizes = await Promise.all(images.map((bytes, i) => decoding(i, () => readImageSize(bytes, `images[${i}]`))));
  const release = await opts.budget.reserve(sizes.reduce((sum, s) => sum + s.width * s.height, 0));
  try {
    const imageBytes = size * size * channels;
    const pixels = new Uint8Array(images.length * imageBytes);
    await Promise.all(
      images.map((bytes, i) =>
        decoding(i, async () => {
          const decoded = await decodeImage(bytes, `images[${i}]`, { size: { height: size, width: size }, channels, maxPixels: opts.maxPixels });
          pixels.set(decoded.data, i * imageBytes);
        }),
      ),
    );
    return { kind: 'pixels', count: images.length, data: pixels };
  } finally {
    release();
  }
}

/** Runs a step on images[i], turning what libs/data says of the image into the caller's status. */
async function decoding<T>(i: number, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;
    const code = error.code === 'too_large' ? status.RESOURCE_EXHAUSTED : status.INVALID_ARGUMENT;
    throw new EmbedError(code, `images[${i}] cannot be decoded: ${error.message}`);
  }
}

/**
 * Refuses a response with a non-finite value: finite inputs far out of range (a preprocessed tensor of
 * -3e38) overflow in the model. The caller's mistake when it sent a tensor; ours for decoded images.
 */
export function checkFiniteVectors(vectors: Float32Array, dim: number, request: EmbedRequest): void {
  const bad = vectors.findIndex((v) => !Number.isFinite(v));
  if (bad < 0) return;
  const image = Math.floor(bad / dim);
  if (!request.tensor) throw new Error(`the model gave a non-finite vector for images[${image}]`);
  throw invalid(`tensor.data: image ${image} gives a non-finite vector; its values are out of range for the model`);
}

function fromTensor(tensor: NonNullable<EmbedRequest['tensor']>, transform: CheckpointTransform): ModelInput {
  const { shape } = tensor;
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw invalid(`tensor.shape must be [N, H, W, C] of positive integers, got [${shape.join(', ')}]`);
  }
  const [n, h, w, c] = shape as [number, number, number, number];
  if (c !== transform.channels) throw invalid(`tensor has ${c} channels; the model takes ${transform.channels}`);
  if (tensor.data.byteLength !== n * h * w * c * 4) {
    throw invalid(`tensor.data has ${tensor.data.byteLength} bytes; shape [${shape.join(', ')}] needs ${n * h * w * c * 4} (float32)`);
  }
  // A copy: the received buffer need not be 4-byte aligned.
  const values = new Float32Array(new Uint8Array(tensor.data).buffer);
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw invalid(`tensor.data: image ${Math.floor(bad / (h * w * c))} holds a non-finite value (${values[bad]}) at index ${bad}`);
  const atSize = h === transform.size && w === transform.size;
  if (!tensor.preprocessed) return atSize ? { kind: 'pixels', count: n, data: values } : { kind: 'resize', count: n, data: values, height: h, width: w };
  if (!atSize) throw invalid(`a preprocessed tensor must be ${transform.size}x${transform.size}, got ${h}x${w}`);
  return { kind: 'input', count: n, data: values };
}
