import { Worker } from 'node:worker_threads';
import { status } from '@grpc/grpc-js';
import type { CheckpointTransform } from '@moco/models';
import type { BackendName } from '@moco/moco';
import { siblingEntry, type ConsoleLevel } from '@moco/service';
import type { Logger } from 'pino';
import { EmbedError } from './errors.js';
import type { ModelInput } from './preprocess.js';

export type OutputKind = 'backbone' | 'head';

/** One forward pass: the inputs of the requests merged by the batcher, on one loaded model. */
export interface ForwardPass {
  handle: number;
  output: OutputKind;
  normalize: boolean;
  transform: CheckpointTransform;
  inputs: ModelInput[];
  /** Images per model call (the pass is split beyond). */
  batchSize: number;
}

export interface Vectors {
  /** [n, dim] row-major. */
  data: Float32Array;
  dim: number;
}

/** Messages to the thread. A handle names one load of a checkpoint; handles are never reused. */
export type ToThread =
  | { op: 'load'; id: number; handle: number; bytes: Uint8Array; channels: number }
  | { op: 'unload'; handle: number }
  | ({ op: 'embed'; id: number } & ForwardPass);

export type FromThread =
  | { op: 'ready'; backend: string; detail: string }
  | { op: 'log'; line: string; level?: ConsoleLevel }
  | { op: 'done'; id: number; vectors?: Vectors }
  /** `gone`: the handle is not loaded in this thread (it was started after the load). */
  | { op: 'failed'; id: number; message: string; stack?: string; gone?: boolean };

export interface ThreadData {
  backend: BackendName | 'auto';
  /** Compute threads (the native backend's; see EMBED_THREADS). */
  threads: number;
}

const ENTRY = siblingEntry(import.meta.url, 'forward-worker');

const YOUNG_GENERATION_MB = 128;

interface Call {
  resolve: (vectors: Vectors | undefined) => void;
  reject: (error: Error) => void;
}

/**
 * The embedder's forward passes run on a thread of their own, which holds tfjs and the models' weights.
 * A pass keeps a core busy for hundreds of milliseconds; on the main thread it stalled the gRPC
 * transport (reading requests, acknowledging flow control, sending responses) and the decoding of the
 * next requests, so serving lost a third of the model's throughput. Here the main thread prepares the
 * next pass while the model computes the current one.
 *
 * If the thread dies (a backend abort), calls in flight fail UNAVAILABLE, a new thread starts, and the
 * `onRestart` listeners learn that every handle is gone.
 */
export class ForwardThread {
  private worker!: Worker;
  private readonly calls = new Map<number, Call>();
  private readonly restartListeners: (() => void)[] = [];
  private nextId = 1;
  private nextHandle = 1;
  private closing = false;
  private starting: Promise<void>;
  backend = '';

  private constructor(
    private readonly data: ThreadData,
    private readonly log: Logger,
  ) {
    this.starting = this.spawn();
  }

  /** Resolves once the thread's backend is up; rejects when it cannot start. */
  static async start(data: ThreadData, log: Logger): Promise<ForwardThread> {
    const thread = new ForwardThread(data, log);
    await thread.starting;
    return thread;
  }

  onRestart(listener: () => void): void {
    this.restartListeners.push(listener);
  }

  /** Loads a checkpoint's query encoder; the returned handle names it in `embed` and `unload`. */
  async load(bytes: Uint8Array, channels: number): Promise<number> {
    const handle = this.nextHandle++;
    await this.call((id) => ({ op: 'load', id, handle, bytes, channels }));
    return handle;
  }

  unload(handle: number): void {
    if (!this.closing) this.worker.postMessage({ op: 'unload', handle } satisfies ToThread);
  }

  async embed(pass: ForwardPass): Promise<Vectors> {
    // The inputs' arrays move to the thread: the requests are done with them.
    const transfer = [...new Set(pass.inputs.map((input) => input.data.buffer as ArrayBuffer))];
    return (await this.call((id) => ({ op: 'embed', id, ...pass }), transfer))!;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }

  private async call(message: (id: number) => ToThread, transfer: ArrayBuffer[] = []): Promise<Vectors | undefined> {
    await this.starting.catch((error: Error) => {
      throw new EmbedError(status.UNAVAILABLE, `the forward-pass thread is down (${error.message})`);
    });
    if (this.closing) throw new EmbedError(status.UNAVAILABLE, 'the embedder is shutting down');
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage(message(id), transfer);
    });
  }

  private spawn(): Promise<void> {
    const worker = new Worker(ENTRY.threadBoot, {
      eval: true,
      workerData: this.data satisfies ThreadData,
      name: 'forward-pass',
      // tfjs allocates a new array for every op's output: with V8's default young generation a pass
      // triggers dozens of scavenges, which took 12-16% of the thread's time under load.
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
      // How @moco/native-kernels takes its thread count (read in the thread, where it loads).
      env: { ...process.env, MOCO_NATIVE_THREADS: String(this.data.threads) },
    });
    this.worker = worker;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: FromThread) => {
        if (m.op === 'ready') {
          ready = true;
          this.backend = m.backend;
          this.log.info({ backend: m.backend, detail: m.detail, threads: this.data.threads }, 'forward-pass thread ready');
          resolve();
        } else if (m.op === 'log') {
          this.log[m.level ?? (m.line.startsWith('warning') ? 'warn' : 'info')]({ thread: 'forward-pass' }, m.line);
        } else {
          const call = this.calls.get(m.id);
          this.calls.delete(m.id);
          if (m.op === 'done') call?.resolve(m.vectors);
          else if (m.gone) call?.reject(new EmbedError(status.UNAVAILABLE, 'the model was unloaded by a restart of the forward-pass thread; try again'));
          else call?.reject(Object.assign(new Error(m.message), { stack: m.stack }));
        }
      });
      worker.on('error', (error) => {
        if (!ready) reject(new Error(`the forward-pass thread could not start: ${error.message}`, { cause: error }));
        else this.log.error({ err: error }, 'forward-pass thread failed');
      });
      worker.on('exit', (code) => {
        if (!ready || this.closing) return;
        this.log.error({ code }, 'forward-pass thread stopped; starting a new one');
        for (const call of this.calls.values()) call.reject(new EmbedError(status.UNAVAILABLE, 'the forward-pass thread stopped; try again'));
        this.calls.clear();
        this.starting = this.spawn();
        // Observed by the next call; a thread that cannot start again fails calls, not the process.
        this.starting.catch((error: unknown) => this.log.error({ err: error }, 'forward-pass thread could not restart'));
        for (const listener of this.restartListeners) listener();
      });
    });
  }
}
