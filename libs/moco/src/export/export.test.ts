import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evalTransform } from '../augment/eval-transform.js';
import { cifarDemoDefaults, type MocoConfig } from '../config.js';
import { Moco } from '../moco.js';
import { Rng } from '../rng.js';
import { useCpuBackend } from '../testing/setup-cpu.js';
import { findPython, findTorchPython } from '../testing/torch-reference.js';
import { loadTrainingState, saveTrainingState } from '../training-state.js';
import * as tf from '../tf.js';
import { exportOnnx, exportPytorch, type Preprocessing } from './index.js';

// Exports checked by the tools their users run: onnx.checker and onnxruntime for ONNX, torch.load and
// torchvision's ResNet for PyTorch, each giving the service's vectors (the embedder's forward pass:
// the frozen query encoder) on the same images.
const here = fileURLToPath(new URL('.', import.meta.url));
const torch = findTorchPython();
if (!torch.python) console.warn(`PyTorch export tests skipped: ${torch.reason}`);
const onnx = findPython('onnx', 'apt-get install python3-onnx');
if (!onnx.python) console.warn(`onnx.checker tests skipped: ${onnx.reason}`);

const TOLERANCE = 1e-4;
const BATCH = 3;

interface Case {
  name: string;
  config: Partial<MocoConfig>;
  preprocessing: Preprocessing;
}

const cases: Case[] = [
  {
    name: 'resnet18 at width 64, CIFAR stem, v1 head',
    config: { arch: 'resnet18', width: 64, stem: 'cifar', head: 'v1', dim: 32 },
    preprocessing: { size: 16, channels: 3, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] },
  },
  {
    name: 'resnet50 at width 8, ImageNet stem, v2 head, grayscale',
    config: { arch: 'resnet50', width: 8, stem: 'imagenet', head: 'v2', dim: 16, inChannels: 1 },
    preprocessing: { size: 32, channels: 1, mean: [0.29], std: [0.32] },
  },
];

/** A training state whose BN parameters and statistics are far from their initial values, so folding matters. */
async function trainedState(c: Case, seed: number): Promise<Uint8Array> {
  const rng = new Rng(seed);
  const moco = new Moco({ ...cifarDemoDefaults, K: 64, ...c.config }, rng);
  for (const [name, v] of moco.query.params) {
    if (/bn\d\.|downsample\.1\./.test(name)) v.assign(tf.randomUniform(v.shape, name.endsWith('weight') ? 0.5 : -0.5, 1.5, 'float32', seed));
  }
  for (const [name, v] of moco.query.buffers) {
    v.assign(name.endsWith('running_var') ? tf.randomUniform(v.shape, 0.5, 2, 'float32', seed) : tf.randomNormal(v.shape, 0, 0.3, 'float32', seed));
  }
  const bytes = await saveTrainingState(moco, { step: 42, epoch: 3, batchInEpoch: 0, rng: rng.state() });
  moco.dispose();
  return bytes;
}

/** Images as the embedder sees them: pixels through the evaluation transform, NHWC; and the same as NCHW. */
function images(p: Preprocessing, seed: number): { nhwc: tf.Tensor4D; nchw: Float32Array } {
  const pixels = tf.randomUniform([BATCH, p.size + 5, p.size + 3, p.channels], 0, 255, 'float32', seed) as tf.Tensor4D;
  const nhwc = evalTransform(pixels, p);
  pixels.dispose();
  const nchw = tf.tidy(() => nhwc.transpose([0, 3, 1, 2]).dataSync() as Float32Array);
  return { nhwc, nchw };
}

/** The embedder's vectors: the query encoder of the state, frozen, in eval mode. */
async function serviceVectors(state: Uint8Array, x: tf.Tensor4D): Promise<{ backbone: Float32Array; head: Float32Array }> {
  const { moco } = loadTrainingState(state);
  moco.query.freeze();
  const backbone = (await moco.query.embed(x, { output: 'backbone' })).data;
  const head = (await moco.query.embed(x, { output: 'head' })).data;
  moco.dispose();
  return { backbone, head };
}

function maxAbsError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

describe('encoder exports', () => {
  let dir: string;
  beforeAll(async () => {
    await useCpuBackend();
    dir = mkdtempSync(join(tmpdir(), 'moco-export-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  cases.forEach((c, i) => {
    describe(c.name, () => {
      let state: Uint8Array;
      let x: { nhwc: tf.Tensor4D; nchw: Float32Array };
      let expected: { backbone: Float32Array; head: Float32Array };
      beforeAll(async () => {
        state = await trainedState(c, 11 + i);
        x = images(c.preprocessing, 5 + i);
        expected = await serviceVectors(state, x.nhwc);
      }, 120_000);
      afterAll(() => x.nhwc.dispose());

      it('ONNX: onnxruntime gives the embedder vectors, backbone and head, at any batch size', async () => {
        for (const output of ['backbone', 'head'] as const) {
          const session = await ort.InferenceSession.create(exportOnnx(state, { output, preprocessing: c.preprocessing }));
          expect(session.outputNames).toEqual(output === 'head' ? ['backbone', 'head'] : ['backbone']);
          const { size, channels } = c.preprocessing;
          // One image at a time, then the batch: the batch dimension is dynamic.
          const one = await session.run({ input: new ort.Tensor('float32', x.nchw.slice(0, channels * size * size), [1, channels, size, size]) });
          expect(maxAbsError(one.backbone!.data as Float32Array, expected.backbone.slice(0, one.backbone!.dims[1]))).toBeLessThan(TOLERANCE);
          const all = await session.run({ input: new ort.Tensor('float32', x.nchw, [BATCH, channels, size, size]) });
          expect(maxAbsError(all.backbone!.data as Float32Array, expected.backbone)).toBeLessThan(TOLERANCE);
          if (output === 'head') expect(maxAbsError(all.head!.data as Float32Array, expected.head)).toBeLessThan(TOLERANCE);
          await session.release();
        }
      }, 120_000);

      it.runIf(onnx.python)('ONNX: passes onnx.checker, with the preprocessing in its metadata', () => {
        const file = join(dir, `case${i}.onnx`);
        writeFileSync(file, exportOnnx(state, { output: 'head', preprocessing: c.preprocessing }));
        const report = JSON.parse(execFileSync(onnx.python!, [join(here, 'check_onnx_export.py'), file], { encoding: 'utf8' })) as {
          outputs: string[];
          input_dims: (string | number)[];
          metadata: Record<string, string>;
          ops: string[];
        };
        const { size, channels, mean, std } = c.preprocessing;
        expect(report.outputs).toEqual(['backbone', 'head']);
        expect(report.input_dims).toEqual(['batch', channels, size, size]);
        expect(report.metadata).toMatchObject({ size: String(size), channels: String(channels), mean: JSON.stringify(mean), std: JSON.stringify(std) });
        // Folded: no BatchNormalization left.
        expect(report.ops).not.toContain('BatchNormalization');
      }, 120_000);

      it.runIf(torch.python)('PyTorch: torch.load and torchvision ResNet (strict keys) give the service vectors', () => {
        const file = join(dir, `case${i}.pth.tar`);
        writeFileSync(file, exportPytorch(state, { preprocessing: c.preprocessing }));
        writeFileSync(join(dir, `case${i}.f32`), x.nchw);
        const { size, channels } = c.preprocessing;
        writeFileSync(
          join(dir, `case${i}.json`),
          JSON.stringify({ shape: [BATCH, channels, size, size], backbone: Array.from(expected.backbone), head: Array.from(expected.head) }),
        );
        const out = execFileSync(torch.python!, [join(here, 'check_pytorch_export.py'), file, join(dir, `case${i}.f32`), join(dir, `case${i}.json`)], {
          encoding: 'utf8',
        });
        const report = JSON.parse(out.trim().split('\n').at(-1)!) as { backbone: number; head: number; arch: string; epoch: number; preprocessing: Preprocessing };
        expect(report.backbone).toBeLessThan(TOLERANCE);
        expect(report.head).toBeLessThan(TOLERANCE);
        expect(report.arch).toBe(c.config.arch);
        expect(report.epoch).toBe(3);
        expect(report.preprocessing).toEqual(c.preprocessing);
      }, 120_000);
    });
  });

  it('the same state exports to the same bytes', async () => {
    const state = await trainedState(cases[1]!, 3);
    const p = cases[1]!.preprocessing;
    expect(Buffer.from(exportPytorch(state, { preprocessing: p })).equals(Buffer.from(exportPytorch(state, { preprocessing: p })))).toBe(true);
    expect(Buffer.from(exportOnnx(state, { output: 'head', preprocessing: p })).equals(Buffer.from(exportOnnx(state, { output: 'head', preprocessing: p })))).toBe(true);
  });
});
