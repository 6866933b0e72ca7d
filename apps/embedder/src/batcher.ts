import { status } from '@grpc/grpc-js';
import type { CheckpointTransform } from '@moco/models';
import { tf, type Encoder } from '@moco/moco';
import { EmbedError } from './errors.js';
import { batchInput, type ModelInput } from './preprocess.js';

export type OutputKind = 'backbone' | 'head';

export interface BatchJob {
  /** Jobs with the same key share forward passes: same model, output and normalisation. */
  key: string;
  encoder: Encoder;
  output: OutputKind;
  normalize: boolean;
  /** The model's evaluation transform (the same for every job of a key). */
  transform: CheckpointTransform;
  /** The request's images: pixels are transformed together with the rest of the pass; a tensor is disposed by the batcher. */
  input: ModelInput;
  /** Epoch ms; Infinity for none. */
  deadline: number;
  /** True once the caller has gone (cancelled, deadline passed on the transport). */
  isCancelled: () => boolean;
}

export interface BatchStats {
  forwardPasses: number;
  imagesEmbedded: number;
  /** Images in each forward pass, the most recent last (bounded). */
  recentBatchSizes: number[];
  /** Requests dropped before their forward pass because their deadline had passed or the caller left. */
  dropped: number;
  /** Milliseconds spent in forward passes (input assembly, evaluation transform, model, results). */
  forwardMs: number;
}

interface Pending {
  job: BatchJob;
  count: number;
  enqueued: number;
  resolve: (result: { data: Float32Array; dim: number }) => void;
  reject: (error: Error) => void;
}

const RECENT_BATCHES = 1000;
/**
 * How long past maxDelayMs a pass with room waits for requests of its key that have been received and
 * are still being decoded (announced with `expect`): they join within milliseconds, whereas a pass
 * started without them makes them wait a whole pass, and under load splits the work into small,
 * less efficient passes.
 */
export const INCOMING_WAIT_MS = 50;

/**
 * Merges concurrent requests into forward passes of up to `maxBatch` images. One pass runs at a time
 * (the backend uses the cores already); while it runs, requests queue up and go together in the next.
 * An idle batcher waits at most `maxDelayMs` after a request arrives for others to join it, and up to
 * INCOMING_WAIT_MS longer while requests of the same key announced with `expect` are still on their way.
 */
export class MicroBatcher {
  readonly stats: BatchStats = { forwardPasses: 0, imagesEmbedded: 0, recentBatchSizes: [], dropped: 0, forwardMs: 0 };
  private readonly queue: Pending[] = [];
  /** Images per key announced with `expect` and not yet submitted. */
  private readonly incoming = new Map<string, number>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;

  constructor(private readonly opts: { maxBatch: number; maxDelayMs: number }) {}

  /**
   * Announces `count` images of `key` that are being prepared (decoded); passes of that key wait a
   * little for them. The returned function withdraws the announcement (call it before `submit`, or on failure).
   */
  expect(key: string, count: number): () => void {
    this.incoming.set(key, (this.incoming.get(key) ?? 0) + count);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = this.incoming.get(key)! - count;
      if (left > 0) this.incoming.set(key, left);
      else this.incoming.delete(key);
      this.pump();
    };
  }

  /** The request's vectors, [n, dim] row-major. */
  submit(job: BatchJob): Promise<{ data: Float32Array; dim: number }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, count: job.input.count, enqueued: performance.now(), resolve, reject });
      this.pump();
    });
  }

  /** From now on, run whatever is queued without waiting for more (shutdown). */
  flush(): void {
    this.flushing = true;
    this.pump();
  }

  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    const first = this.queue[0]!;
    const queued = this.queue.reduce((n, p) => (p.job.key === first.job.key ? n + p.count : n), 0);
    const waited = performance.now() - first.enqueued;
    const incoming = this.incoming.has(first.job.key);
    const wait = this.opts.maxDelayMs + (incoming ? INCOMING_WAIT_MS : 0);
    if (this.flushing || queued >= this.opts.maxBatch || waited >= wait) {
      clearTimeout(this.timer);
      this.timer = undefined;
      // The pass blocks the thread (the backend runs synchronously): first let the event loop send the
      // responses of the last pass and read the requests that came meanwhile (their decoding then
      // proceeds on the thread pool during the pass).
      this.running = true;
      setImmediate(() => void this.run(first.job.key));
    } else {
      // Re-armed on every pump: how long to wait changes as announced requests arrive.
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait - waited);
    }
  }

  private async run(key: string): Promise<void> {
    const batch: Pending[] = [];
    let images = 0;
    // The oldest request always goes (alone if it exceeds maxBatch); later ones of the same key while they fit.
    for (let i = 0; i < this.queue.length; ) {
      const p = this.queue[i]!;
      if (p.job.key !== key || (batch.length > 0 && images + p.count > this.opts.maxBatch)) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      if (Date.now() >= p.job.deadline || p.job.isCancelled()) {
        this.stats.dropped++;
        if (p.job.input.kind === 'tensor') p.job.input.tensor.dispose();
        p.reject(new EmbedError(status.DEADLINE_EXCEEDED, 'deadline exceeded before the request reached the model'));
        continue;
      }
      batch.push(p);
      images += p.count;
    }
    try {
      if (batch.length > 0) await this.forward(batch, images);
    } finally {
      this.running = false;
      this.pump();
    }
  }

  private async forward(batch: Pending[], images: number): Promise<void> {
    const { encoder, output, normalize, transform } = batch[0]!.job;
    const inputs = batch.map((p) => p.job.input);
    const started = performance.now();
    let x: tf.Tensor4D | undefined;
    try {
      x = batchInput(inputs, transform);
      const { data, dim } = await encoder.embed(x, { output, normalize, batchSize: Math.max(this.opts.maxBatch, 1) });
      this.stats.forwardMs += performance.now() - started;
      this.stats.forwardPasses++;
      this.stats.imagesEmbedded += images;
      this.stats.recentBatchSizes.push(images);
      if (this.stats.recentBatchSizes.length > RECENT_BATCHES) this.stats.recentBatchSizes.shift();
      let offset = 0;
      for (const p of batch) {
        p.resolve({ data: data.slice(offset * dim, (offset + p.count) * dim), dim });
        offset += p.count;
      }
    } catch (error) {
      for (const p of batch) p.reject(error as Error);
    } finally {
      for (const input of inputs) if (input.kind === 'tensor') input.tensor.dispose();
      x?.dispose();
    }
  }
}
