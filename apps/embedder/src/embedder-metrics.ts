// The embedder's Prometheus metrics, in one place: the server, batcher and model registry call these
// hooks and know nothing of prom-client.
import { status } from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ModelLoad = 'load' | 'reload';

export interface EmbedderMetrics {
  /** A call ended with its gRPC status (a stream: the whole stream). */
  request(method: string, code: status, seconds: number): void;
  /** A forward pass ran: its images, and how long each of its requests waited in the batcher's queue. */
  forwardPass(images: number, queuedSeconds: number[]): void;
  /** A model's weights were loaded: `reload` when this process had loaded it before (evicted, or lost with the forward thread). */
  modelLoaded(kind: ModelLoad): void;
  /** Where the number of models loaded is read at each scrape. */
  countModels(count: () => number): void;
}

export const noEmbedderMetrics: EmbedderMetrics = { request() {}, forwardPass() {}, modelLoaded() {}, countModels() {} };

export function createEmbedderMetrics(registry: Registry): EmbedderMetrics {
  const registers = [registry];
  const requests = new Counter({
    name: 'moco_embedder_requests_total',
    help: 'gRPC calls ended, by method and status code',
    labelNames: ['method', 'code'],
    registers,
  });
  const latency = new Histogram({
    name: 'moco_embedder_request_duration_seconds',
    help: 'Seconds from a call arriving to its status, by method',
    labelNames: ['method'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const batchImages = new Histogram({
    name: 'moco_embedder_batch_images',
    help: 'Images in each forward pass (micro-batching at work)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers,
  });
  const queueWait = new Histogram({
    name: 'moco_embedder_queue_wait_seconds',
    help: "Seconds a request's images waited in the batcher before their forward pass started",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const images = new Counter({ name: 'moco_embedder_images_embedded_total', help: 'Images embedded', registers });
  const loads = new Counter({ name: 'moco_embedder_model_loads_total', help: 'Model weights loaded, by kind (load, reload)', labelNames: ['kind'], registers });
  let countModels = () => 0;
  new Gauge({
    name: 'moco_embedder_models_loaded',
    help: 'Models loaded in the forward thread now',
    registers,
    collect() {
      this.set(countModels());
    },
  });
  for (const kind of ['load', 'reload'] satisfies ModelLoad[]) loads.labels(kind).inc(0);

  return {
    request(method, code, seconds) {
      requests.labels(method, status[code] ?? String(code)).inc();
      latency.labels(method).observe(seconds);
    },
    forwardPass(count, queuedSeconds) {
      batchImages.observe(count);
      images.inc(count);
      for (const seconds of queuedSeconds) queueWait.observe(seconds);
    },
    modelLoaded(kind) {
      loads.labels(kind).inc();
    },
    countModels(count) {
      countModels = count;
    },
  };
}
