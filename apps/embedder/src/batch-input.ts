import type { CheckpointTransform } from '@moco/models';
import { evalTransform, tf } from '@moco/moco';
import type { ModelInput } from './preprocess.js';

/**
 * The model input of a forward pass: the requests' inputs, in order, as one [N, size, size, channels]
 * tensor. Consecutive pixel (or ready) inputs become one tensor and go through one evaluation transform.
 */
export function batchInput(inputs: readonly ModelInput[], transform: CheckpointTransform): tf.Tensor4D {
  const { size, channels } = transform;
  const imageValues = size * size * channels;
  return tf.tidy(() => {
    const parts: tf.Tensor4D[] = [];
    for (let i = 0; i < inputs.length; ) {
      const first = inputs[i]!;
      if (first.kind === 'resize') {
        parts.push(evalTransform(tf.tensor4d(first.data, [first.count, first.height, first.width, channels]), transform));
        i++;
        continue;
      }
      let j = i;
      let n = 0;
      while (j < inputs.length && inputs[j]!.kind === first.kind) n += inputs[j++]!.count;
      const values = new Float32Array(n * imageValues);
      let offset = 0;
      for (let k = i; k < j; k++) {
        const { data } = inputs[k]!;
        values.set(data, offset);
        offset += data.length;
      }
      const x = tf.tensor4d(values, [n, size, size, channels]);
      parts.push(first.kind === 'pixels' ? evalTransform(x, transform) : x);
      i = j;
    }
    return parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
  });
}
