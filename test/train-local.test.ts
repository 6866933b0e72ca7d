import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveHyperparameters, toMocoConfig } from '@moco/contracts';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { findTorchPython } from '../libs/moco/src/testing/torch-reference.js';

// The local training command end to end, as a user runs it: real Fashion-MNIST files, the wasm
// backend with our gradient kernels, JSON lines out, a saved state resumed.
const cli = join(import.meta.dirname, '../apps/cli/src/train-local.ts');
const tsx = join(import.meta.dirname, '../node_modules/.bin/tsx');
const fashionMnist = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz';

function trainLocal(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const run = spawnSync(tsx, [cli, ...args], { encoding: 'utf8', timeout: 600_000, env });
  const lines = run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: run.status, lines, stderr: run.stderr };
}

const tiny = ['--train-limit', '64', '--test-limit', '64', '--batch-size', '32', '--width', '2', '--K', '64', '--bn-splits', '2', '--json'];

describe.runIf(existsSync(fashionMnist))('npm run train:local', () => {
  it('trains, reports baselines and per-epoch kNN, saves a state that resumes, exports the encoder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'train-local-'));
    const state = join(dir, 'state.bin');
    const onnxFile = join(dir, 'encoder.onnx');
    // --no-symmetric: the published asymmetric loss instead of the small-image recipe's symmetric one.
    const first = trainLocal([...tiny, '--no-symmetric', '--epochs', '2', '--save', state, '--export', 'onnx', onnxFile]);
    expect(first.status, first.stderr).toBe(0);
    // auto: native where the oneDNN addon is built (CI builds it), else wasm.
    const backend = /tfjs backend '(native|wasm)'/.exec(first.stderr)?.[1];
    expect(backend, first.stderr).toBeDefined();
    const [start, baselines, ...rest] = first.lines;
    expect(start).toMatchObject({ event: 'start', train_images: 64, test_images: 64, backend, config: { symmetric: false } });
    expect(baselines!.random_init_knn).toBeGreaterThan(0);
    expect(baselines!.raw_pixel_knn).toBeGreaterThan(20); // 10 classes: chance is 10
    const epochs = rest.filter((l) => 'epoch' in l);
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2]);
    for (const e of epochs) {
      expect(Number.isFinite(e.loss)).toBe(true);
      expect(e.images_per_s).toBeGreaterThan(0);
      expect(e.knn_acc).toBeGreaterThanOrEqual(0);
    }
    expect(rest.at(-1)).toMatchObject({ epochs: 2, steps: 4, state, export: onnxFile });
    expect(existsSync(state)).toBe(true);
    // The ONNX export runs: 28x28 grey in, width 2 (16 features) and the 128-d head out.
    const session = await ort.InferenceSession.create(onnxFile);
    const out = await session.run({ input: new ort.Tensor('float32', new Float32Array(2 * 28 * 28), [2, 1, 28, 28]) });
    expect([out.backbone!.dims, out.head!.dims]).toEqual([[2, 16], [2, 128]]);

    // The state carries its own config (2 epochs, width 2): resuming the finished run has nothing left.
    const pth = join(dir, 'checkpoint_0002.pth.tar');
    const resumed = trainLocal([...tiny, '--resume', state, '--export', 'pytorch', pth]);
    expect(resumed.status, resumed.stderr).toBe(0);
    const torch = findTorchPython();
    if (torch.python) {
      const loaded = spawnSync(torch.python, ['-c', `import torch; c = torch.load(${JSON.stringify(pth)}); print(c['arch'], c['epoch'], len(c['state_dict']))`], { encoding: 'utf8' });
      expect(loaded.stdout.trim(), loaded.stderr).toMatch(/^resnet18 2 \d+$/);
    }
    expect(resumed.lines[0]).toMatchObject({ event: 'start', resumed_at_step: 4, config: { epochs: 2, width: 2 } });
    expect(resumed.lines.at(-1)).toMatchObject({ epochs: 2, steps: 4 });
  });

  it("takes unset knobs from the service's recipe for the dataset size, warns, and uses the shipped subset without the full set", () => {
    const run = trainLocal(['--train-limit', '128', '--test-limit', '32', '--width', '2', '--epochs', '1', '--knn-k', '500', '--json'], {
      ...process.env,
      FASHION_MNIST_DIR: '/nonexistent',
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/full set is not in \/nonexistent; using the subset shipped with the repository/);
    const recipe = resolveHyperparameters({ width: 2, epochs: 1, knn_k: 500 }, { height: 28, width: 28, channels: 1, imageCount: 128 });
    const expected = toMocoConfig(recipe.value, 1);
    const start = run.lines.find((l) => l.event === 'start')!;
    expect(start.config).toMatchObject({ K: expected.K, batchSize: expected.batchSize, lr: expected.lr, bnSplits: expected.bnSplits, symmetric: true });
    // The dataset-size rule, not the CIFAR demo's 4096-long queue for 128 images.
    expect(expected.K).toBeLessThan(128);
    expect((start.warnings as { field: string }[]).map((w) => w.field)).toEqual(['hyperparameters.knn_k']);
  });

  it('rejects bad options with a message naming them', () => {
    const bad = trainLocal(['--epochs', '0', '--K', 'many']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--epochs: /);
    expect(bad.stderr).toMatch(/--K: /);
    expect(bad.stderr).toMatch(/Usage: npm run train:local/);
    const noPath = trainLocal(['--export', 'onnx']);
    expect(noPath.status).toBe(1);
    expect(noPath.stderr).toMatch(/--export needs one PATH/);
  });
});
