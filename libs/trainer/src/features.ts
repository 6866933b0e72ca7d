import type { ImageDataset } from '@moco/data';
import { evalTransform, l2Normalize, tf, type Encoder } from '@moco/moco';

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
  for (let start = 0; start < ds.count; start += chunk) {
    const n = Math.min(chunk, ds.count - start);
    const features = tf.tidy(() => {
      const pixels = ds.pixels.subarray(start * perImage, (start + n) * perImage);
      const x = evalTransform(tf.tensor4d(pixels, [n, ds.height, ds.width, ds.channels], 'float32'), transform);
      return l2Normalize(encoder.forward(x, { training: false, output }));
    });
    data.set(await features.data<'float32'>(), start * dim);
    features.dispose();
  }
  return { data, dim };
}
