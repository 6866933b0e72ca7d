import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { decodeImage } from '@moco/data';
import { cifarDemoDefaults, evalTransform, loadTrainingState, Moco, Rng, saveTrainingState, tf, type MocoConfig } from '@moco/moco';
import { exportOnnx, exportPytorch, type Preprocessing } from '@moco/moco/export';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeImage } from '../../libs/data/src/test-fixtures.js';
import { findTorchPython } from '../../libs/moco/src/testing/torch-reference.js';

// The README's "Use your encoder elsewhere" snippets (test/readme/use-elsewhere/*), run as written on
// a checkpoint's exports, each giving the service's vectors (the embedder's forward pass). Where
// README.md holds a snippet under `<!-- snippet: <path> -->`, it must be the file's text.

const ROOT = path.join(import.meta.dirname, '../..');
const SNIPPETS = path.join(import.meta.dirname, 'use-elsewhere');
const run = promisify(execFile);
const torch = findTorchPython();
if (!torch.python) console.warn(`README PyTorch snippets skipped: ${torch.reason}`);

// The Node snippet's constants: Fashion-MNIST's evaluation transform.
const preprocessing: Preprocessing = { size: 28, channels: 1, mean: [0.286], std: [0.353] };

async function state(config: Partial<MocoConfig>): Promise<Uint8Array> {
  const rng = new Rng(3);
  const moco = new Moco({ ...cifarDemoDefaults, K: 64, ...config }, rng);
  const bytes = await saveTrainingState(moco, { step: 12, epoch: 3, batchInEpoch: 0, rng: rng.state() });
  moco.dispose();
  return bytes;
}

/** Runs a snippet file where it lies (so it finds this repository's packages), in `cwd` (so it finds its files). */
async function runSnippet(command: string, file: string, cwd: string): Promise<string> {
  const { stdout } = await run(command, [path.join(SNIPPETS, file)], { cwd, maxBuffer: 1 << 24 });
  return stdout.trim();
}

function expectClose(actual: number[], expected: Float32Array): void {
  expect(actual).toHaveLength(expected.length);
  const worst = actual.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i]!)), 0);
  expect(worst).toBeLessThan(1e-4);
}

describe('README: use your encoder elsewhere', () => {
  let dir: string;
  let service: Float32Array;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    dir = await mkdtemp(path.join(tmpdir(), 'moco-readme-elsewhere-'));
    // The service's default encoder for small grey images: ResNet-18, CIFAR stem, width 64.
    const fashion = await state({ arch: 'resnet18', stem: 'cifar', width: 64, inChannels: 1 });
    const pixels = new Uint8Array(28 * 28).map((_, i) => (i * 37 + (i >> 5) * 11) % 256);
    const png = await encodeImage(pixels, { width: 28, height: 28, channels: 1 });
    await writeFile(path.join(dir, 'shoe.png'), png);
    await writeFile(path.join(dir, 'encoder.onnx'), exportOnnx(fashion, { output: 'backbone', preprocessing }));
    await writeFile(path.join(dir, 'encoder.pth.tar'), exportPytorch(fashion, { preprocessing }));

    // The embedder's vector of the same image: decoded as libs/data does, evaluation transform, frozen encoder.
    const decoded = await decodeImage(png, 'shoe.png', { size: { height: 28, width: 28 }, channels: 1, maxPixels: 28 * 28 });
    const { moco } = loadTrainingState(fashion);
    moco.query.freeze();
    const x = evalTransform(tf.tensor4d(decoded.data, [1, 28, 28, 1]), preprocessing);
    service = (await moco.query.embed(x, { output: 'backbone' })).data;
    x.dispose();
    moco.dispose();
  }, 120_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('onnxruntime in Node gives the embedder vector', async () => {
    expectClose(JSON.parse(await runSnippet(process.execPath, 'onnxruntime.mjs', dir)), service);
  }, 60_000);

  it.runIf(torch.python)('PyTorch (torchvision ResNet) gives the embedder vector', async () => {
    expectClose(JSON.parse(await runSnippet(torch.python!, 'pytorch_features.py', dir)), service);
  }, 120_000);

  it.runIf(torch.python)("main_lincls.py's loading takes the export (ImageNet stem, RGB)", async () => {
    const imagenet = await mkdtemp(path.join(tmpdir(), 'moco-readme-lincls-'));
    const rgb = await state({ arch: 'resnet18', stem: 'imagenet', width: 64, inChannels: 3 });
    await writeFile(path.join(imagenet, 'encoder.pth.tar'), exportPytorch(rgb, { preprocessing: { size: 224, channels: 3, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } }));
    expect(await runSnippet(torch.python!, 'main_lincls_load.py', imagenet)).toBe("=> loaded pre-trained model 'encoder.pth.tar' (epoch 3)");
    await rm(imagenet, { recursive: true });
  }, 120_000);

  it('README.md shows each snippet it names as the file holds it', async () => {
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
    for (const file of ['onnxruntime.mjs', 'pytorch_features.py', 'main_lincls_load.py']) {
      const block = new RegExp(`<!-- snippet: test/readme/use-elsewhere/${file.replace('.', '\\.')} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(readme);
      expect(block, `README.md shows ${file}`).not.toBeNull();
      expect(block![1], file).toBe(await readFile(path.join(SNIPPETS, file), 'utf8'));
    }
  });
});
