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
// The optional oneDNN addon (@moco/native-kernels): wins 'auto' after tfjs-node where it is built.
const nativeReason: string | undefined = await import(/* @vite-ignore */ '@moco/native-kernels').then(
  (m: { nativeUnavailableReason(): string | undefined }) => m.nativeUnavailableReason(),
  (error: unknown) => String(error),
);
const nativeBuilt = nativeReason === undefined;
/** What 'auto' picks on this machine. */
const autoChoice = tfjsNodeInstalled ? 'tensorflow' : nativeBuilt ? 'native' : 'wasm';

function collect(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('initBackend', () => {
  it.runIf(!tfjsNodeInstalled && nativeBuilt)("'auto' picks native where the addon is built and tfjs-node is not installed, and logs one line", async () => {
    const { lines, log } = collect();
    const choice = await initBackend({ log });
    expect(choice).toEqual({ name: 'native', detail: expect.stringMatching(/oneDNN .*\d+ threads?\)$/), warnings: [] });
    expect(tf.getBackend()).toBe('native');
    expect(lines).toEqual([`tfjs backend 'native': ${choice.detail}`]);
  });

  it.runIf(!tfjsNodeInstalled && !nativeBuilt)("'auto' picks wasm with the gradient kernels, with one warning that the native addon is not built", async () => {
    const { lines, log } = collect();
    const choice = await initBackend({ log });
    expect(choice).toEqual({
      name: 'wasm',
      detail: expect.stringMatching(/^wasm \((no )?SIMD, \d+ threads?\)$/),
      warnings: [expect.stringMatching(/^native oneDNN kernels not built \(.+\): using wasm, training is about 2x slower; .*libdnnl-dev/)],
    });
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeDefined();
    expect(lines).toEqual([`warning: ${choice.warnings[0]}`, `tfjs backend 'wasm': ${choice.detail}`]);
  });

  it.runIf(tfjsNodeInstalled)("'auto' picks tfjs-node where it is installed", async () => {
    const choice = await initBackend({ log: () => {} });
    expect(choice.name).toBe('tensorflow');
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it.skipIf(tfjsNodeInstalled)("'auto' without the native addon: one warning saying why and how to build it, then wasm", async () => {
    vi.resetModules();
    vi.doMock('@moco/native-kernels', () => ({
      NATIVE_BACKEND: 'native',
      NATIVE_BUILD_HINT: 'apt-get install libdnnl-dev g++ make && npm rebuild @moco/native-kernels',
      nativeUnavailableReason: () => 'cannot load moco_native.node (libdnnl.so.2: cannot open shared object file)',
      registerNativeBackend: () => {
        throw new Error('not built');
      },
    }));
    try {
      const fresh = await import('./select-backend.js');
      const { lines, log } = collect();
      const choice = await fresh.initBackend({ log });
      expect(choice.name).toBe('wasm');
      expect(choice.warnings).toEqual([
        "native oneDNN kernels not built (cannot load moco_native.node (libdnnl.so.2: cannot open shared object file)): using wasm, training is about 2x slower; apt-get install libdnnl-dev g++ make && npm rebuild @moco/native-kernels",
      ]);
      expect(lines).toEqual([`warning: ${choice.warnings[0]}`, `tfjs backend 'wasm': ${choice.detail}`]);
      // Asked for by name, it is the usual fallback warning.
      const named = await fresh.initBackend({ prefer: 'native', log: () => {} });
      expect(named.name).toBe('wasm');
      expect(named.warnings).toEqual([expect.stringMatching(/^backend 'native' unavailable \(cannot load .*; build it with 'apt-get install libdnnl-dev.*'\), falling back$/)]);
    } finally {
      vi.doUnmock('@moco/native-kernels');
      vi.resetModules();
    }
  });

  it.skipIf(tfjsNodeInstalled)("an unsatisfiable prefer 'tensorflow' falls back (to native where built, else wasm) with a warning", async () => {
    const { lines, log } = collect();
    const choice = await initBackend({ prefer: 'tensorflow', log });
    expect(choice.name).toBe(nativeBuilt ? 'native' : 'wasm');
    expect(choice.warnings[0]).toMatch(/'tensorflow' unavailable.*@tensorflow\/tfjs-node.*falling back/);
    if (!nativeBuilt) expect(choice.warnings[1]).toMatch(/'native' unavailable .*falling back/);
    expect(choice.warnings).toHaveLength(nativeBuilt ? 1 : 2);
    expect(lines).toEqual([...choice.warnings.map((w) => `warning: ${w}`), `tfjs backend '${choice.name}': ${choice.detail}`]);
    expect(tf.getBackend()).toBe(choice.name);
  });

  it('an unknown name (untyped input) warns and chooses automatically', async () => {
    const choice = await initBackend({ prefer: 'wsam' as 'wasm', log: () => {} });
    expect(choice.name).toBe(autoChoice);
    expect(choice.warnings[0]).toContain("unknown backend 'wsam'");
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
