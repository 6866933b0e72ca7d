import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as tf from '../tf.js';
import { initBackend, withBackend } from './select-backend.js';

function installed(specifier: string): boolean {
  try {
    createRequire(import.meta.url).resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

// On GPU pods tfjs-node is installed and wins 'auto'; on this machine it cannot be installed.
const tfjsNodeInstalled = installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node');

function collect(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('initBackend', () => {
  it.skipIf(tfjsNodeInstalled)("'auto' picks wasm with the gradient kernels when tfjs-node is not installed, and logs one line", async () => {
    const { lines, log } = collect();
    const choice = await initBackend({ log });
    expect(choice).toEqual({ name: 'wasm', detail: expect.stringMatching(/^wasm \((no )?SIMD, \d+ threads?\)$/), warnings: [] });
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeDefined();
    expect(lines).toEqual([`tfjs backend 'wasm': ${choice.detail}`]);
  });

  it.runIf(tfjsNodeInstalled)("'auto' picks tfjs-node where it is installed", async () => {
    const choice = await initBackend({ log: () => {} });
    expect(choice.name).toBe('tensorflow');
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it.skipIf(tfjsNodeInstalled)("an unsatisfiable prefer 'tensorflow' falls back to wasm with a warning", async () => {
    const { lines, log } = collect();
    const choice = await initBackend({ prefer: 'tensorflow', log });
    expect(choice.name).toBe('wasm');
    expect(choice.warnings).toHaveLength(1);
    expect(choice.warnings[0]).toMatch(/'tensorflow' unavailable.*@tensorflow\/tfjs-node.*falling back/);
    expect(lines).toEqual([`warning: ${choice.warnings[0]}`, `tfjs backend 'wasm': ${choice.detail}`]);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('an unknown name (untyped input) warns and chooses automatically', async () => {
    const choice = await initBackend({ prefer: 'wsam' as 'wasm', log: () => {} });
    expect(choice.name).toBe(tfjsNodeInstalled ? 'tensorflow' : 'wasm');
    expect(choice.warnings).toEqual([expect.stringContaining("unknown backend 'wsam'")]);
  });

  it("prefer 'cpu' gives cpu, without warnings", async () => {
    const choice = await initBackend({ prefer: 'cpu', log: () => {} });
    expect(choice).toEqual({ name: 'cpu', detail: 'cpu (pure JS)', warnings: [] });
    expect(tf.getBackend()).toBe('cpu');
  });

  it("prefer 'wasm' gives wasm", async () => {
    const choice = await initBackend({ prefer: 'wasm', log: () => {} });
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it("prefer 'native' gives the oneDNN backend where the addon is built, else wasm with a warning", async () => {
    const { lines, log } = collect();
    const choice = await initBackend({ prefer: 'native', log });
    expect(tf.getBackend()).toBe(choice.name);
    if (choice.name === 'native') {
      expect(choice).toEqual({ name: 'native', detail: expect.stringMatching(/oneDNN/), warnings: [] });
      const dw = tf.grad((w: tf.Tensor) => tf.sum(tf.conv2d(tf.ones([1, 5, 5, 2]) as tf.Tensor4D, w as tf.Tensor4D, 1, 'same')));
      expect(Array.from(dw(tf.ones([3, 3, 2, 1])).dataSync())).toEqual([16, 16, 20, 20, 16, 16, 20, 20, 25, 25, 20, 20, 16, 16, 20, 20, 16, 16]);
    } else {
      expect(choice.name).toBe('wasm');
      expect(choice.warnings).toEqual([expect.stringMatching(/'native' unavailable .*falling back/)]);
      expect(lines[0]).toBe(`warning: ${choice.warnings[0]}`);
    }
  });

  it('can be called repeatedly, and logs to stderr by default', async () => {
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => {});
    const first = await initBackend({ prefer: 'wasm' });
    const second = await initBackend({ prefer: 'wasm' });
    expect(second).toEqual(first);
    expect(stderr.mock.calls).toEqual([[`tfjs backend 'wasm': ${first.detail}`], [`tfjs backend 'wasm': ${first.detail}`]]);
    // Still trains: the conv filter gradient runs on wasm.
    const dw = tf.grad((w: tf.Tensor) => tf.sum(tf.conv2d(tf.ones([1, 5, 5, 2]) as tf.Tensor4D, w as tf.Tensor4D, 1, 'same')));
    expect(Array.from(dw(tf.ones([3, 3, 2, 1])).dataSync())).toEqual([16, 16, 20, 20, 16, 16, 20, 20, 25, 25, 20, 20, 16, 16, 20, 20, 16, 16]);
  });
});

describe('withBackend', () => {
  it('runs on the given backend and restores the previous one, also on error', async () => {
    await initBackend({ prefer: 'wasm', log: () => {} });
    expect(await withBackend('cpu', () => tf.getBackend())).toBe('cpu');
    expect(tf.getBackend()).toBe('wasm');
    await expect(
      withBackend('cpu', () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(tf.getBackend()).toBe('wasm');
  });

  it.skipIf(tfjsNodeInstalled)('throws when the backend cannot run here', async () => {
    await expect(withBackend('tensorflow', () => 1)).rejects.toThrow(/tfjs-node/);
  });
});
