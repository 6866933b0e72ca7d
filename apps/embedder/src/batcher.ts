import { status } from '@grpc/grpc-js';
import { tf, type Encoder } from '@moco/moco';
import { EmbedError } from './errors.js';

export type OutputKind = 'backbone' | 'head';

export interface BatchJob {
  /** Jobs with the same key share forward passes: same model, output and normalisation. */
  key: string;
  encoder: Encoder;
  output: OutputKind;
  normalize: boolean;
  /** The model input, [n, size, size, channels]; the batcher disposes it. */
  input: tf.Tensor4D;
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
 * Merges concurrent requests into forward passes of up to `maxBatch` images. One pass runs at a time
 * (the backend uses the cores already); while it runs, requests queue up and go together in the next.
 * An idle batcher waits at most `maxDelayMs` after a request arrives for others to join it.
 */
export class MicroBatcher {
  readonly stats: BatchStats = { forwardPasses: 0, imagesEmbedded: 0, recentBatchSizes: [], dropped: 0 };
  private readonly queue: Pending[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;

  constructor(private readonly opts: { maxBatch: number; maxDelayMs: number }) {}

  /** The request's vectors, [n, dim] row-major. */
  submit(job: BatchJob): Promise<{ data: Float32Array; dim: number }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, count: job.input.shape[0], enqueued: performance.now(), resolve, reject });
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
    if (this.flushing || queued >= this.opts.maxBatch || waited >= this.opts.maxDelayMs) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.run(first.job.key);
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.opts.maxDelayMs - waited);
    }
  }

  private async run(key: string): Promise<void> {
    this.running = true;
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
        p.job.input.dispose();
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
    const { encoder, output, normalize } = batch[0]!.job;
    const inputs = batch.map((p) => p.job.input);
    const x = inputs.length === 1 ? inputs[0]! : tf.concat(inputs, 0);
    try {
      const { data, dim } = await encoder.embed(x, { output, normalize, batchSize: Math.max(this.opts.maxBatch, 1) });
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
      tf.dispose(inputs);
      if (x !== inputs[0]) x.dispose();
    }
  }
}
