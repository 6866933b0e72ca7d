import os from 'node:os';
import { z } from 'zod';

// Building blocks: each app composes the groups it needs into one z.object and calls loadConfig.

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');
/** A port for an optional listener: unset means the listener is off. */
const optionalPort = z.coerce.number().int().min(0).max(65535).optional();
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** A tfjs backend preference, as libs/moco's initBackend takes it (native: the optional oneDNN kernels). */
const backend = z.enum(['auto', 'tensorflow', 'native', 'wasm', 'cpu']).default('auto');

export const databaseEnv = {
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL')
    .default('postgresql://root@127.0.0.1:5432/moco'),
};

/** The demo and train:local: Fashion-MNIST's full set (default: Debian's folder); without it they use the subset shipped in libs/data. */
export const fashionMnistEnv = {
  FASHION_MNIST_DIR: z.string().min(1).optional(),
};

export const redisEnv = {
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL').default('redis://127.0.0.1:6379'),
  /** Prefix for BullMQ keys, so several deployments (or test runs) can share one Redis. */
  QUEUE_PREFIX: z.string().min(1).default('moco'),
};

export const storageEnv = {
  STORAGE_KIND: z.enum(['local', 's3']).default('local'),
  STORAGE_ROOT: z.string().min(1).default('./.data/objects'),
  S3_BUCKET: z.string().min(3).optional(),
  S3_PREFIX: z.string().optional(),
  S3_ENDPOINT: z.url().optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_FORCE_PATH_STYLE: bool(false),
};

export const logEnv = {
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

export const apiEnv = {
  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: port(8080),
  /** host:port of an embedder for POST /v1/embeddings (the REST mirror of gRPC Embed); unset: 503. */
  EMBEDDER_URL: z.string().regex(/^[^\s/]+:\d+$/, 'must be host:port').optional(),
  /** Upload limits: archives are checked while they stream and again while they are unpacked. */
  MAX_UPLOAD_BYTES: positiveInt(2 * 1024 ** 3),
  MAX_DATASET_FILES: positiveInt(2_000_000),
  MAX_IMAGE_PIXELS: positiveInt(4096 * 4096),
  /** Most bytes a dataset may unpack and decode to while it is validated (the API holds them in memory). */
  MAX_DATASET_BYTES: positiveInt(2 * 1024 ** 3),
  /** Where uploads are spooled while they are validated (default: the OS temp folder); local to each replica. */
  UPLOAD_TEMP_DIR: z.string().min(1).optional(),
  /** Rate limits, counted in Redis so that every API replica shares them: the window they refill after... */
  RATE_LIMIT_WINDOW_S: positiveInt(60),
  /** ...requests per window per API key, on every /v1 route... */
  RATE_LIMIT_MAX: positiveInt(600),
  /** ...of which dataset uploads and job creations (each) per key: they cost far more than reads... */
  RATE_LIMIT_EXPENSIVE_MAX: positiveInt(30),
  /** ...and requests without a valid key per client address (an unauthenticated flood, key guessing). */
  RATE_LIMIT_UNAUTHENTICATED_MAX: positiveInt(60),
  /**
   * How long an API key lookup is reused; a revocation, rotation or deletion ends it within
   * milliseconds (Postgres NOTIFY from an api_keys trigger), and job creation re-checks the key in
   * its own statement. 0: every request looks its key up.
   */
  API_KEY_CACHE_S: z.coerce.number().int().min(0).default(60),
  /** A client must send its request line and headers within this (slowloris defence). */
  API_HEADERS_TIMEOUT_MS: positiveInt(30_000),
  /** ...and its whole request, body included, within this (an upload of MAX_UPLOAD_BYTES must fit). */
  API_REQUEST_TIMEOUT_MS: positiveInt(900_000),
  /** Uploads (and registrations) handled at once, each spooled and validated in a child process; more get 503 with Retry-After. */
  MAX_CONCURRENT_UPLOADS: positiveInt(2),
  /** The Retry-After (seconds) of that 503. */
  UPLOAD_RETRY_AFTER_S: positiveInt(10),
  /**
   * What the training workers run on, so that a job that cannot fit them is refused at creation:
   * their backend (TRAIN_BACKEND as it resolves there; wasm's heap stops at 4 GiB)...
   */
  WORKER_FLEET_BACKEND: z.enum(['tensorflow', 'native', 'wasm', 'cpu']).default('native'),
  /** ...and the memory (MiB) one training step may take on a worker; unset: only the backend's own cap. */
  WORKER_FLEET_MEMORY_MB: z.coerce.number().int().positive().optional(),
};

/**
 * Crash leftovers: an upload's row stays `pending` while its object is written, its heartbeat
 * refreshed every SWEEP_GRACE_S / 4. Start-up (and periodic) sweeps remove pending rows silent for
 * longer than this, with their objects, and objects without a row that are older than this.
 */
export const sweepEnv = {
  SWEEP_GRACE_S: positiveInt(120),
};

export const workerEnv = {
  WORKER_ID: z.string().min(1).optional(),
  /** tfjs backend preference; the worker falls back (with a warning) when it is not installed. */
  TRAIN_BACKEND: backend,
  /** How often Postgres is reconciled with the queue (jobs Postgres says are live but Redis lost). */
  RECONCILE_INTERVAL_S: positiveInt(60),
  /** Where the worker keeps downloaded datasets between jobs. */
  WORKER_CACHE_DIR: z.string().min(1).default('./.data/worker-cache'),
  /** Bound on the cached datasets' bytes: least recently used ones not being read are evicted past it. */
  WORKER_CACHE_MAX_BYTES: positiveInt(20 * 1024 ** 3),
  /** BullMQ lock of a running job: the job of a worker that died goes to another one about this long after. */
  WORKER_LOCK_DURATION_MS: positiveInt(30_000),
  /** How often each worker looks for jobs whose lock expired. */
  WORKER_STALLED_INTERVAL_MS: positiveInt(30_000),
  /** Where the worker serves /healthz, /readyz and /metrics (probes, Prometheus); unset: not served. */
  WORKER_OPS_HOST: z.string().default('127.0.0.1'),
  WORKER_OPS_PORT: optionalPort,
  /** /readyz fails while the running job's trainer has reported nothing (step, epoch, checkpoint) for this long: a hung trainer. */
  WORKER_TRAINER_SILENCE_S: positiveInt(300),
};

export const embedderEnv = {
  EMBED_HOST: z.string().default('127.0.0.1'),
  EMBED_PORT: port(50051),
  /** Micro-batching: concurrent requests share a forward pass of up to EMBED_MAX_BATCH images... */
  EMBED_MAX_BATCH: positiveInt(64),
  /** ...waiting at most this long after the first of them arrived while the model is idle. */
  EMBED_MAX_DELAY_MS: z.coerce.number().int().min(0).default(5),
  /** Request limits: more images, or a larger message, is RESOURCE_EXHAUSTED. */
  EMBED_MAX_IMAGES: positiveInt(256),
  EMBED_MAX_MESSAGE_BYTES: positiveInt(64 * 1024 ** 2),
  EMBED_MAX_IMAGE_PIXELS: positiveInt(4096 * 4096),
  /** Decoded pixels (from the image headers) one request may ask for; more is RESOURCE_EXHAUSTED. */
  EMBED_MAX_REQUEST_PIXELS: positiveInt(64 * 1024 ** 2),
  /** Decoded pixels of all requests at once: beyond, requests wait their turn to decode (bounds decode memory). */
  EMBED_MAX_DECODING_PIXELS: positiveInt(128 * 1024 ** 2),
  /** Models held in memory (least recently used ones are dropped). */
  EMBED_MAX_MODELS: positiveInt(4),
  /** Aliases are re-read this often besides on Postgres notifications (which a lost connection misses). */
  EMBED_POLL_INTERVAL_S: positiveInt(30),
  /** How long an API key lookup is reused; a revocation ends it at once (Postgres NOTIFY from an api_keys trigger). */
  EMBED_KEY_CACHE_S: positiveInt(60),
  /** On SIGTERM: health says NOT_SERVING this long before new calls are refused, then in-flight ones drain. */
  EMBED_DRAIN_DELAY_MS: z.coerce.number().int().min(0).default(0),
  EMBED_SHUTDOWN_TIMEOUT_S: positiveInt(30),
  /** tfjs backend preference; falls back (with a warning) when it is not installed. */
  EMBED_BACKEND: backend,
  /**
   * Compute threads of the forward pass (the native backend's OpenMP threads; wasm always uses one).
   * Default: one core fewer than the machine has, left to reading requests and decoding images.
   */
  EMBED_THREADS: positiveInt(Math.max(1, os.availableParallelism() - 1)),
  /** Where the embedder serves HTTP /healthz, /readyz and /metrics (Prometheus); unset: not served. */
  EMBED_OPS_HOST: z.string().default('127.0.0.1'),
  EMBED_OPS_PORT: optionalPort,
};

export { port, bool, positiveInt, backend };
