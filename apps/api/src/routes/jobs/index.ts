import {
  CheckpointPage,
  CreatedJob,
  CreateJobRequest,
  ErrorBody,
  EventCursor,
  IdParams,
  Job,
  JobEventPage,
  JobEventsQuery,
  JobPage,
  JobPreview,
  ListJobsQuery,
  MetricsQuery,
  MetricsResponse,
  PageQuery,
} from '@moco/contracts';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { EventStreams } from '../../jobs/event-stream.js';
import type { JobService } from '../../jobs/job-service.js';
import { invalidParameter } from '../../shared/api-error.js';
import { actScope, readScope } from '../../shared/scope.js';

/** `?metadata.<key>=` or `?metadata[<key>]=` (OpenAPI's deepObject style, which generated clients send). */
const METADATA_PARAM = /^metadata(?:\.(.+)|\[(.+)\])$/;

const EVENTS_DESCRIPTION = `A page of events in order (\`?after=<event id>&limit=\`).

With \`Accept: text/event-stream\`: a live Server-Sent Events stream instead. First the events after
\`Last-Event-ID\` (or \`?after=\`), then each new one as it happens, as \`id: <event id>\`, \`event: <type>\`,
\`data: <JobEvent JSON>\`. New metric values come as \`event: metrics\` with
\`data: {"job_id", "data": [{"name", "points": [[step, value], ...]}]}\` (from \`?metrics_after_step=\`, by
default only values newer than the stream). A \`: heartbeat\` comment every 15 s; the stream ends after the
terminal event (succeeded, failed or cancelled), and a reconnect after it is answered 204 (EventSource then stops).`;

const jobRoutes: FastifyPluginAsyncZod<{ jobs: JobService; streams: EventStreams }> = async (app, { jobs, streams }) => {
  app.post(
    '',
    {
      schema: {
        tags: ['jobs'],
        operationId: 'createJob',
        summary: 'Create a training job',
        description:
          'Validates the datasets and hyperparameters (unset ones come from the recipe for the image size, scaled to the image count) and queues the job. ' +
          'Settings known to train badly (K at or above the image count, knn_k at or above the kNN bank, fewer than 8 images per BN split) ' +
          'are accepted but listed in `warnings` and recorded as `warning` events. ' +
          'With `Idempotency-Key`, repeating the same body returns the first job (200, `Idempotent-Replayed: true`); ' +
          'a different body with the same key is 409 `idempotency_conflict`.',
        body: CreateJobRequest,
        headers: z.looseObject({ 'idempotency-key': z.string().min(1).max(255).optional() }),
        response: { 200: CreatedJob, 201: CreatedJob, 400: ErrorBody, 409: ErrorBody, 422: ErrorBody, 429: ErrorBody },
      },
      config: { expensive: true },
    },
    async (request, reply) => {
      const { job, replayed } = await jobs.create(request.principal, request.body, request.headers['idempotency-key']);
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(replayed ? 200 : 201).send(job);
    },
  );

  app.post(
    '/preview',
    {
      schema: {
        tags: ['jobs'],
        operationId: 'previewJob',
        summary: 'Resolve a job request without creating it',
        description:
          'The same body and checks as createJob: answers the hyperparameters the job would train with (unset ones from the recipe ' +
          'for the dataset), its steps and project, or the 400 that createJob would give. Nothing is stored or queued.',
        body: CreateJobRequest,
        response: { 200: JobPreview, 400: ErrorBody },
      },
    },
    async (request) => jobs.preview(request.principal, request.body),
  );

  app.get(
    '',
    {
      schema: {
        tags: ['jobs'],
        operationId: 'listJobs',
        summary: 'List jobs, newest first',
        description: 'Filters: `?status=queued,running`, `?metadata[<key>]=<value>` or `?metadata.<key>=<value>` (several are ANDed); admin keys: `?project_id=`.',
        querystring: ListJobsQuery,
        response: { 200: JobPage, 400: ErrorBody },
      },
    },
    async (request) => {
      const { limit, after, status, project_id: projectId, ...rest } = request.query;
      const metadata: [string, string][] = [];
      for (const [key, value] of Object.entries(rest)) {
        const match = METADATA_PARAM.exec(key);
        if (!match) throw invalidParameter(key, 'unknown query parameter');
        metadata.push([(match[1] ?? match[2])!, value]);
      }
      return jobs.list(readScope(request.principal, projectId), { statuses: status, metadata }, { limit, after });
    },
  );

  app.get(
    '/:id',
    { schema: { tags: ['jobs'], operationId: 'getJob', summary: 'Get a job with its progress', params: IdParams, response: { 200: Job, 404: ErrorBody } } },
    async (request) => jobs.get(readScope(request.principal), request.params.id),
  );

  app.post(
    '/:id/cancel',
    {
      schema: {
        tags: ['jobs'],
        operationId: 'cancelJob',
        summary: 'Cancel a job',
        description:
          'A queued job is cancelled at once (200). A running one becomes `cancelling` (202): its worker saves a checkpoint and ' +
          'then marks it cancelled. Repeating is harmless; a finished job is 409 `job_finished`. Admin keys cancel jobs of every project.',
        params: IdParams,
        response: { 200: Job, 202: Job, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      const { job, accepted } = await jobs.cancel(actScope(request.principal), request.params.id);
      return reply.code(accepted ? 202 : 200).send(job);
    },
  );

  app.get(
    '/:id/events',
    {
      schema: {
        tags: ['jobs'],
        operationId: 'listJobEvents',
        summary: 'Job events: a page, or a live stream (SSE)',
        description: EVENTS_DESCRIPTION,
        params: IdParams,
        querystring: JobEventsQuery,
        headers: z.looseObject({ 'last-event-id': EventCursor.optional() }),
        response: { 200: JobEventPage, 204: z.void().describe('SSE: the job has finished and nothing is left after the cursor'), 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request, reply) => {
      const projectId = readScope(request.principal);
      const { after, limit, metrics_after_step: metricsAfterStep } = request.query;
      if (!request.headers.accept?.includes('text/event-stream')) return jobs.events(projectId, request.params.id, after ?? 0, limit);
      const job = await jobs.findJob(projectId, request.params.id);
      const lastEventId = request.headers['last-event-id'];
      await streams.open({ request, reply, job, afterEventId: lastEventId ?? after ?? 0, metricsAfterStep });
      return reply;
    },
  );

  app.get(
    '/:id/metrics',
    {
      schema: {
        tags: ['jobs'],
        operationId: 'getJobMetrics',
        summary: 'Metric series of a job',
        description:
          'Per step: loss, lr, pretext_accuracy, feature_std; per epoch (at its last step): epoch_loss, images_per_s, knn_accuracy. ' +
          '`?name=loss,lr&from_step=&to_step=&limit=` (limit: points per metric).',
        params: IdParams,
        querystring: MetricsQuery,
        response: { 200: MetricsResponse, 404: ErrorBody },
      },
    },
    async (request) => jobs.metrics(readScope(request.principal), request.params.id, request.query),
  );

  app.get(
    '/:id/checkpoints',
    {
      schema: {
        tags: ['jobs'],
        operationId: 'listJobCheckpoints',
        summary: 'Checkpoints of a job, oldest first',
        params: IdParams,
        querystring: PageQuery,
        response: { 200: CheckpointPage, 404: ErrorBody },
      },
    },
    async (request) => jobs.checkpoints(readScope(request.principal), request.params.id, request.query),
  );
};

export default jobRoutes;
