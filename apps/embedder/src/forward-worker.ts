// The forward-pass thread (started by forward-thread.ts): owns tfjs and the loaded query encoders.
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, loadTrainingState, type Encoder } from '@moco/moco';
import { routeConsole } from '@moco/service';
import { batchInput } from './batch-input.js';
import type { FromThread, ThreadData, ToThread } from './forward-thread.js';

const port = parentPort!;
const send = (message: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
// Libraries' console output (tfjs's banner) becomes the embedder's log entries, not plain text.
routeConsole((level, line) => send({ op: 'log', line, level }));
const encoders = new Map<number, Encoder>();

const choice = await initBackend({ prefer: (workerData as ThreadData).backend, log: (line) => send({ op: 'log', line }) });

port.on('message', (message: ToThread) => {
  if (message.op === 'unload') {
    encoders.get(message.handle)?.dispose();
    encoders.delete(message.handle);
    return;
  }
  handle(message).catch((error: unknown) => {
    const e = error instanceof Error ? error : new Error(String(error));
    send({ op: 'failed', id: message.id, message: e.message, stack: e.stack });
  });
});
send({ op: 'ready', backend: choice.name, detail: choice.detail });

async function handle(message: Exclude<ToThread, { op: 'unload' }>): Promise<void> {
  if (message.op === 'load') {
    const { moco } = loadTrainingState(message.bytes);
    // Serving needs the query encoder only.
    moco.key.dispose();
    moco.queue.dispose();
    moco.optimizer.dispose();
    if (moco.query.config.inChannels !== message.channels) {
      moco.query.dispose();
      throw new Error(`the encoder takes ${moco.query.config.inChannels} channels but the transform has ${message.channels}`);
    }
    // Served, never trained: BN is folded into the convolutions once, not on every pass.
    moco.query.freeze();
    encoders.set(message.handle, moco.query);
    send({ op: 'done', id: message.id });
    return;
  }
  const encoder = encoders.get(message.handle);
  if (!encoder) {
    send({ op: 'failed', id: message.id, message: `model handle ${message.handle} is not loaded`, gone: true });
    return;
  }
  const x = batchInput(message.inputs, message.transform);
  try {
    const vectors = await encoder.embed(x, { output: message.output, normalize: message.normalize, batchSize: message.batchSize });
    send({ op: 'done', id: message.id, vectors }, [vectors.data.buffer as ArrayBuffer]);
  } finally {
    x.dispose();
  }
}
