import * as tf from '../tf.js';

/** Unit tests run on the exact, deterministic cpu backend. */
export async function useCpuBackend(): Promise<void> {
  await tf.setBackend('cpu');
}
