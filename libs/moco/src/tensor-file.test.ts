import { beforeAll, describe, expect, it } from 'vitest';
import { decodeTensors, encodeTensors } from './tensor-file.js';
import { useCpuBackend } from './testing/setup-cpu.js';
import * as tf from './tf.js';

beforeAll(useCpuBackend);

describe('tensor file', () => {
  it('round-trips names, shapes, values and the header, with the documented layout', async () => {
    const tensors = new Map<string, tf.Tensor>([
      ['a', tf.tensor2d([[1, 2, 3], [4, 5, 6]])],
      ['b/c', tf.scalar(-0.5)],
    ]);
    const bytes = await encodeTensors({ kind: 'test', step: 7 }, tensors);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('MOCOTENS');
    const view = new DataView(bytes.buffer);
    expect(view.getUint32(8, true)).toBe(1);
    const dataStart = (16 + view.getUint32(12, true) + 3) & ~3;
    expect(bytes.length).toBe(dataStart + 7 * 4);
    expect(view.getFloat32(dataStart + 6 * 4, true)).toBe(-0.5);

    // Decoding works from an unaligned copy too.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const { meta, values } = decodeTensors<{ kind: string; step: number }>(shifted.subarray(1));
    expect(meta).toEqual({ kind: 'test', step: 7 });
    expect(values.get('a')).toEqual({ shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
    expect(values.get('b/c')).toEqual({ shape: [], data: Float32Array.from([-0.5]) });

    // And from a Node Buffer inside a shared pool (as storage clients return them).
    const pooled = Buffer.concat([Buffer.from('unrelated bytes first'), bytes]).subarray(21);
    expect(decodeTensors(pooled).values.get('a')!.data).toEqual(Float32Array.from([1, 2, 3, 4, 5, 6]));
  });

  it('refuses bytes that are not a tensor file or are cut short', async () => {
    expect(() => decodeTensors(new TextEncoder().encode('PK\u0003\u0004 not ours....'))).toThrow(/bad magic/);
    const bytes = await encodeTensors({}, new Map([['x', tf.ones([10])]]));
    expect(() => decodeTensors(bytes.subarray(0, bytes.length - 8))).toThrow(/runs past the end/);
  });
});
