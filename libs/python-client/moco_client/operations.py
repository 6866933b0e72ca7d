"""Which client method serves each operation of the OpenAPI document (by its operationId).

A test (test/python-client/operations.test.ts) fails when an operation of the document has no entry
here, or an entry names no method: add one per new operation.
"""

OPERATIONS = {
    "getHealth": "health.live",
    "getReadiness": "health.ready",
    "getQueueDepth": "health.queue_depth",
    "createDataset": "datasets.upload",
    "listDatasets": "datasets.list",
    "getDataset": "datasets.get",
    "getDatasetSamples": "datasets.samples",
    "downloadDataset": "datasets.download",
    "createJob": "jobs.create",
    "previewJob": "jobs.preview",
    "listJobs": "jobs.list",
    "getJob": "jobs.get",
    "cancelJob": "jobs.cancel",
    "listJobEvents": "jobs.events",
    "getJobMetrics": "jobs.metrics",
    "listJobCheckpoints": "jobs.checkpoints",
    "exportCheckpoint": "checkpoints.export",
    "promoteModel": "models.promote",
    "listModels": "models.list",
    "createEmbeddings": "embeddings.create",
    "getAdminQueue": "admin.queue",
    "listProjects": "admin.projects",
    "listApiKeys": "admin.keys.list",
    "createApiKey": "admin.keys.create",
    "revokeApiKey": "admin.keys.revoke",
    "rotateApiKey": "admin.keys.rotate",
}
