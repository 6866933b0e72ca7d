import type { ImageDataset } from '@moco/data';
import { evalTransform, tf, type Encoder } from '@moco/moco';

export interface EvalTransform {
  size: number;
  mean: number[];
  std: number[];
}

/** L2-normalised features of every image (evaluation transform, BN in inference mode), [N, dim]. */
export async function extractFeatures(
  encoder: Encoder,
  ds: ImageDataset,
  transform: EvalTransform,
  opts: { output?: 'backbone' | 'head'; chunk?: number } = {},
): Promise<{ data: Float32Array; dim: number }> {
  const chunk = opts.chunk ?? 256;
  const output = opts.output ?? 'backbone';
  const dim = output === 'backbone' ? encoder.featureDim : encoder.config.dim;
  const perImage = ds.height * ds.width * ds.channels;
  const data = new Float32Array(ds.count * dim);
  // Chunks of the uint8 dataset, so its float copy never exists whole.
  for (let start = 0; start < ds.count; start += chunk) {
    const n = Math.min(chunk, ds.count - start);
    const pixels = ds.pixels.subarray(start * perImage, (start + n) * perImage);
    const x = tf.tidy(() => evalTransform(tf.tensor4d(pixels, [n, ds.height, ds.width, ds.channels], 'float32'), transform));
    data.set((await encoder.embed(x, { output, normalize: true, batchSize: n })).data, start * dim);
    x.dispose();
  }
  return { data, dim };
}
