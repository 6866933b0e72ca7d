import { checkpointDownloads, hyperparameterWarnings, type ResolvedHyperparameters } from '@moco/contracts';

// One example per operation of the OpenAPI document, by operationId: its request body (where it
// has one) and its success answer. Taken from a real run (a tiny job on 64 16x16 images), so
// generators and the docs UI show what the API really sends; the document test validates each
// against the operation's own schemas.

export interface OperationExample {
  request?: unknown;
  response: unknown;
}

const PROJECT = 'proj_01a24e9d17a46b259478ceaf643ae21f';
const DATASET = 'ds_01a24e9d3e6d9cb6f9801c51a099eb79';
const JOB = 'job_01a24e9d3f1ad2dfa4d90f2daca838c3';
const CHECKPOINT = 'ckpt_01a24e9d696c4f31abdce1b447bb176c';
const WORKER = 'vm-4571-0431ff';

const page = <T>(data: T[], nextCursor: string | null = null) => ({ data, has_more: nextCursor !== null, next_cursor: nextCursor });

const dataset = {
  id: DATASET,
  project_id: PROJECT,
  name: 'photos',
  status: 'ready',
  source: 'upload',
  format: 'tar.gz',
  source_uri: null,
  download_url: `/v1/datasets/${DATASET}/download`,
  bytes: 13817,
  image_count: 64,
  height: 16,
  width: 16,
  channels: 3,
  class_names: ['cat', 'dog'],
  class_counts: [32, 32],
  labelled: true,
  error: null,
  created_at: '2026-12-07T03:47:37.731Z',
};

const createJob = {
  dataset_id: DATASET,
  hyperparameters: { epochs: 2, width: 4, dim: 16, batch_size: 32, K: 256 },
  seed: 7,
  checkpoint_every: 2,
  metadata: { team: 'vision' },
};

const finalMetrics = { lr: 0.03, loss: 4.6245, epoch_loss: 4.3992, feature_std: 0.0533, images_per_s: 49.96, pretext_accuracy: 0.0312 };

const job = {
  id: JOB,
  project_id: PROJECT,
  dataset_id: DATASET,
  eval_dataset_id: null,
  status: 'succeeded',
  hyperparameters: {
    encoder: 'resnet18',
    stem: 'cifar',
    width: 4,
    head: 'v1',
    dim: 16,
    K: 256,
    m: 0.99,
    T: 0.1,
    batch_size: 32,
    lr: 0.06,
    momentum: 0.9,
    weight_decay: 0.0005,
    schedule: 'cosine',
    lr_milestones: [120, 160],
    lr_gamma: 0.1,
    epochs: 2,
    augmentation: 'v2',
    image_size: 16,
    bn_splits: 8,
    symmetric: false,
    knn_k: 200,
    knn_t: 0.1,
  },
  seed: 7,
  metadata: { team: 'vision' },
  checkpoint_every: 2,
  max_runtime_s: null,
  from_checkpoint_id: null,
  early_stopping: null,
  collapse: null,
  best_checkpoint_id: null,
  progress: { step: 4, total_steps: 4, epoch: 2, epochs: 2, fraction: 1 },
  latest_metrics: finalMetrics,
  attempts: 1,
  worker_id: WORKER,
  error: null,
  created_at: '2026-12-07T03:47:37.883Z',
  started_at: '2026-12-07T03:47:38.343Z',
  finished_at: '2026-12-07T03:47:48.944Z',
  cancel_requested_at: null,
  heartbeat_at: '2026-12-07T03:47:48.935Z',
  updated_at: '2026-12-07T03:47:48.966Z',
};

const queuedJob = {
  ...job,
  status: 'queued',
  progress: { step: 0, total_steps: 4, epoch: 0, epochs: 2, fraction: 0 },
  latest_metrics: {},
  attempts: 0,
  worker_id: null,
  started_at: null,
  finished_at: null,
  heartbeat_at: null,
  updated_at: job.created_at,
};

// The tiny settings of this example on 64 images: the warnings the API gives for them.
const createdJob = { ...queuedJob, warnings: hyperparameterWarnings(job.hyperparameters as ResolvedHyperparameters, dataset.image_count) };

const transform = { size: 16, channels: 3, mean: [0.4993, 0.4993, 0.4993], std: [0.2885, 0.2885, 0.2885] };
const encoder = { arch: 'resnet18', stem: 'cifar', width: 4, in_channels: 3, head: 'v1', dim: 16 };

const checkpoint = {
  id: CHECKPOINT,
  job_id: JOB,
  step: 4,
  epoch: 2,
  final: true,
  bytes: 580028,
  downloads: checkpointDownloads(CHECKPOINT),
  metrics: finalMetrics,
  transform,
  encoder,
  created_at: '2026-12-07T03:47:48.717Z',
};

const model = {
  id: CHECKPOINT,
  project_id: PROJECT,
  embedding_space_id: 'es_208a61ca73e915d276ef0ebe4bf87956',
  aliases: ['production'],
  job_id: JOB,
  step: 4,
  epoch: 2,
  final: true,
  metrics: finalMetrics,
  transform,
  encoder,
  created_at: checkpoint.created_at,
};

const apiKey = {
  id: 'key_01a24e9d818499ef82d0195366b87cee',
  project_id: PROJECT,
  name: 'ci',
  role: 'member',
  prefix: 'mk_U5Y2m6',
  created_at: '2026-12-07T03:47:54.893Z',
  last_used_at: null,
  revoked_at: null,
  expires_at: null,
};
const rotatedKey = {
  ...apiKey,
  id: 'key_01a24e9d8202fd120aecc2c49b137006',
  prefix: 'mk_a0r6iN',
  created_at: '2026-12-07T03:47:55.010Z',
};

/** The SSE form of GET /v1/jobs/{id}/events (text/event-stream). */
export const EVENT_STREAM_EXAMPLE = [
  `id: 1\nevent: created\ndata: {"id":1,"job_id":"${JOB}","type":"created","message":"job created","data":{"status":"queued"},"created_at":"2026-12-07T03:47:37.883Z"}\n`,
  `event: metrics\ndata: {"job_id":"${JOB}","data":[{"name":"loss","points":[[1,0.7618],[2,3.5684]]}]}\n`,
  ': heartbeat\n',
].join('\n');

export const EXAMPLES: Record<string, OperationExample> = {
  getHealth: { response: { status: 'ok' } },
  getReadiness: { response: { status: 'ok', checks: { postgres: 'ok', redis: 'ok', storage: 'ok' } } },
  getQueueDepth: { response: { waiting: 2, prioritized: 0, delayed: 0, active: 1, demand: 3 } },
  createDataset: { request: { source: 's3://moco-datasets/photos.tar.gz', name: 'photos' }, response: dataset },
  listDatasets: { response: page([dataset], DATASET) },
  getDataset: { response: dataset },
  // An 8x8 thumbnail, cut short to one sample.
  getDatasetSamples: { response: { dataset_id: DATASET, data: [{ label: 0, class_name: 'cat', png: 'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAA00lEQVQImQHIADf/AAAlSm+Uud4DKE1yl7zhBitQdZq/5AkuUwB4ncLnDDFWe6DF6g80WX6jyO0SN1yBpssA8BU6X4SpzvMYPWKHrNH2G0Bliq/U+R5DAGiNstf8IUZrkLXa/yRJbpO43QInTHGWuwDgBSpPdJm+4wgtUnecweYLMFV6n8TpDjMAWH2ix+wRNluApcrvFDleg6jN8hc8YYarAND1Gj9kia7T+B1CZ4yx1vsgRWqPtNn+IwBIbZK33AEmS3CVut8EKU5zmL3iByxRdptWNF4hPKf9jAAAAABJRU5ErkJggg==' }] } },
  createJob: { request: createJob, response: createdJob },
  previewJob: {
    request: { dataset_id: DATASET, hyperparameters: createJob.hyperparameters },
    response: { project_id: PROJECT, dataset_id: DATASET, eval_dataset_id: null, hyperparameters: job.hyperparameters, total_steps: 4, steps_per_epoch: 2, warnings: createdJob.warnings },
  },
  listJobs: { response: page([job], JOB) },
  getJob: { response: job },
  cancelJob: {
    response: { ...job, status: 'cancelling', finished_at: null, cancel_requested_at: '2026-12-07T03:47:45.654Z', progress: { ...job.progress, step: 2, fraction: 0.5 } },
  },
  listJobEvents: {
    response: page(
      [
        { id: 1, job_id: JOB, type: 'created', message: 'job created', data: { status: 'queued' }, created_at: job.created_at },
        {
          id: 2,
          job_id: JOB,
          type: 'started',
          message: `attempt 1 started on worker ${WORKER}`,
          data: { status: 'running', attempt: 1, worker_id: WORKER },
          created_at: '2026-12-07T03:47:38.534Z',
        },
      ],
      '2',
    ),
  },
  getJobMetrics: {
    response: { job_id: JOB, data: [{ name: 'loss', points: [[1, 0.7618], [2, 3.5684], [3, 4.1738], [4, 4.6245]] }], has_more: false, next_from_step: null },
  },
  listJobCheckpoints: { response: page([checkpoint]) },
  promoteModel: { request: { checkpoint_id: CHECKPOINT, alias: 'production' }, response: model },
  listModels: { response: { data: [model] } },
  createEmbeddings: {
    request: { images: ['iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC'], model: 'production', output: 'backbone', normalize: true },
    response: {
      model_id: CHECKPOINT,
      alias: 'production',
      embedding_space_id: model.embedding_space_id,
      output: 'backbone',
      normalized: true,
      dim: 4,
      data: [[0.6124, 0.0293, 0.4035, 0.6796]],
    },
  },
  getAdminQueue: {
    response: { queue: 'training', waiting: 0, active: 1, delayed: 0, failed: 0, completed: 1, workers: [{ name: WORKER, addr: '10.0.3.7:39162', age_s: 40, idle_s: 3 }] },
  },
  listProjects: { response: { data: [{ id: PROJECT, name: 'vision', created_at: '2026-12-07T03:47:27.811Z' }] } },
  listApiKeys: { response: page([apiKey]) },
  createApiKey: { request: { project_name: 'vision', name: 'ci' }, response: { ...apiKey, key: 'mk_U5Y2m642pZujd5TENOM69GVsRWUfeTZVatOL636xNWI' } },
  revokeApiKey: { response: { ...apiKey, revoked_at: '2026-12-07T03:47:56.120Z' } },
  rotateApiKey: {
    request: { grace_period_s: 3600 },
    response: { ...rotatedKey, key: 'mk_a0r6iNgY9FEupobJ6ehUzIdZg3Rs2k5Z_GpYIoCBsvg', previous: { ...apiKey, expires_at: '2026-12-07T04:47:55.000Z' } },
  },
};
