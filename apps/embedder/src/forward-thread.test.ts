import { status } from '@grpc/grpc-js';
import type { CheckpointTransform } from '@moco/models';
import { evalTransform, Moco, Rng, saveTrainingState, tf } from '@moco/moco';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbedError } from './errors.js';
import { ForwardThread, type ForwardPass } from './forward-thread.js';
import { tinyConfig } from './testing.js';

const SIZE = 8;
const transform: CheckpointTransform = { size: SIZE, channels: 3, mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.3] };
const logs: { level: number; msg: string }[] = [];
let thread: ForwardThread;
let moco: Moco;
let bytes: Uint8Array;

const pixels = (n: number, seed: number) => {
  const rng = new Rng(seed);
  return new Uint8Array(n * SIZE * SIZE * 3).map(() => rng.int(256));
};
const pass = (handle: number, data: Uint8Array): ForwardPass => ({
  handle,
  output: 'backbone',
  normalize: true,
  transform,
  inputs: [{ kind: 'pixels', count: data.length / (SIZE * SIZE * 3), data }],
  batchSize: 64,
});

async function reference(data: Uint8Array) {
  const x = tf.tidy(() => evalTransform(tf.tensor4d(data, [data.length / (SIZE * SIZE * 3), SIZE, SIZE, 3], 'float32'), transform));
  const out = await moco.query.embed(x, { output: 'backbone', normalize: true });
  x.dispose();
  return out;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  moco = new Moco(tinyConfig(3), new Rng(5));
  bytes = await saveTrainingState(moco, { step: 1, epoch: 1, batchInEpoch: 0, rng: new Rng(5).state() });
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  thread = await ForwardThread.start({ backend: 'cpu', threads: 1 }, log);
});

afterAll(async () => {
  await thread?.close();
  moco?.dispose();
});

describe('ForwardThread', () => {
  it("embeds on its own thread exactly as the library does in this one, and the inputs' arrays move there", async () => {
    expect(thread.backend).toBe('cpu');
    const handle = await thread.load(bytes, 3);
    const data = pixels(5, 1);
    const expected = await reference(data);
    const got = await thread.embed(pass(handle, data));
    expect(data.byteLength).toBe(0); // transferred, not copied
    expect(got.dim).toBe(expected.dim);
    expect(Array.from(got.data)).toEqual(Array.from(expected.data));
  });

  it('refuses a checkpoint that does not load, and one of the wrong channels, and keeps serving', async () => {
    await expect(thread.load(new TextEncoder().encode('garbage'), 3)).rejects.toThrow();
    await expect(thread.load(bytes, 1)).rejects.toThrow(/takes 3 channels but the transform has 1/);
    const handle = await thread.load(bytes, 3);
    expect((await thread.embed(pass(handle, pixels(1, 2)))).data).toHaveLength(moco.query.featureDim);
  });

  it('an unloaded handle is UNAVAILABLE', async () => {
    const handle = await thread.load(bytes, 3);
    thread.unload(handle);
    const error = await thread.embed(pass(handle, pixels(1, 3))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EmbedError);
    expect((error as EmbedError).code).toBe(status.UNAVAILABLE);
  });

  it('when the thread dies: calls in flight fail UNAVAILABLE, listeners hear of it, and a new thread serves', async () => {
    const handle = await thread.load(bytes, 3);
    let restarts = 0;
    thread.onRestart(() => restarts++);
    const inFlight = thread.embed(pass(handle, pixels(64, 4))).catch((e: unknown) => e);
    // What a backend abort does to the thread.
    await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    const error = await inFlight;
    expect(error).toBeInstanceOf(EmbedError);
    expect((error as EmbedError).code).toBe(status.UNAVAILABLE);
    expect(restarts).toBe(1);
    expect(logs.some((l) => l.level === 50 && l.msg.includes('forward-pass thread stopped'))).toBe(true);
    // The old handle is gone with the old thread; a new load serves.
    expect(((await thread.embed(pass(handle, pixels(1, 5))).catch((e: unknown) => e)) as EmbedError).code).toBe(status.UNAVAILABLE);
    const again = await thread.load(bytes, 3);
    const data = pixels(2, 6);
    const expected = await reference(data);
    expect(Array.from((await thread.embed(pass(again, data))).data)).toEqual(Array.from(expected.data));
  });
});
