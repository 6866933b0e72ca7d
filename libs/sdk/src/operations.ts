// Which MocoClient method serves each operation of the OpenAPI document (by its operationId). A test
// (test/clients/operations.test.ts) fails when an operation has no entry here, or an entry names no
// method: add one per new operation (the Python client has the same table, moco_client/operations.py).

export const OPERATIONS: Record<string, string> = {
  getHealth: 'health.live',
  getReadiness: 'health.ready',
  getQueueDepth: 'health.queueDepth',
  createDataset: 'datasets.upload',
  listDatasets: 'datasets.list',
  getDataset: 'datasets.get',
  getDatasetSamples: 'datasets.samples',
  downloadDataset: 'datasets.download',
  createJob: 'jobs.create',
  previewJob: 'jobs.preview',
  listJobs: 'jobs.list',
  getJob: 'jobs.get',
  cancelJob: 'jobs.cancel',
  listJobEvents: 'jobs.events',
  getJobMetrics: 'jobs.metrics',
  listJobCheckpoints: 'jobs.checkpoints',
  exportCheckpoint: 'checkpoints.export',
  promoteModel: 'models.promote',
  listModels: 'models.list',
  createEmbeddings: 'embeddings.create',
  getAdminQueue: 'admin.queue',
  listProjects: 'admin.projects',
  listApiKeys: 'admin.keys.list',
  createApiKey: 'admin.keys.create',
  revokeApiKey: 'admin.keys.revoke',
  rotateApiKey: 'admin.keys.rotate',
};
