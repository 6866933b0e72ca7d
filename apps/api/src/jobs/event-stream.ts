import { TERMINAL_STATUSES, type JobModel } from '@moco/db';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { JobRepository } from './job-repository.js';
import { toEventResource, toSeries } from './job-resources.js';
import type { JobUpdates } from './job-updates.js';

export const HEARTBEAT_MS = 15_000;
const EVENTS_PER_QUERY = 500;
const METRIC_ROWS_PER_QUERY = 5_000;

const isTerminal = (status: unknown) => (TERMINAL_STATUSES as readonly unknown[]).includes(status);

export interface EventStreamDeps {
  repo: JobRepository;
  updates: JobUpdates;
}

export interface StreamOptions {
  request: FastifyRequest;
  reply: FastifyReply;
  job: JobModel;
  afterEventId: number;
  metricsAfterStep?: number;
}

export type EventStreams = ReturnType<typeof createEventStreams>;

export function createEventStreams(deps: EventStreamDeps) {
  const live = new Set<() => void>();
  return {
    open: (opts: StreamOptions) => streamJobEvents(deps, opts, live),
    /** Ends every open stream (shutdown: they would otherwise hold the server open; clients reconnect). */
    closeAll: () => {
      for (const end of live) end();
    },
  };
}

/**
 * Serves a job's events as Server-Sent Events: the backlog after `afterEventId`, then each new
 * event as it commits (woken by the shared LISTEN connection), as `id: <event id>`, `event: <type>`,
 * `data: <JobEvent JSON>`. New metric rows go out as `event: metrics` (no id, so a reconnect's
 * Last-Event-ID stays an event id) with `data: {job_id, data: [{name, points: [[step, value]]}]}`.
 * A comment every 15 s keeps proxies from closing an idle stream; the stream ends after the
 * terminal event (succeeded, failed, cancelled).
 */
async function streamJobEvents({ repo, updates }: EventStreamDeps, opts: StreamOptions, live: Set<() => void>): Promise<void> {
  const { request, reply, job } = opts;
  // A finished job with nothing after the cursor (a reconnect after the end): 204 is the answer that
  // stops an EventSource from reconnecting; an empty 200 would have it reconnect forever.
  if (isTerminal(job.status) && (await repo.events(job.id, opts.afterEventId, 1)).length === 0) {
    await reply.code(204).send();
    return;
  }
  const raw = reply.raw;
  let lastEventId = opts.afterEventId;
  // Metrics are tracked by step: epoch-end metrics land on a step whose per-step metrics were already
  // sent, so rows at the last sent step are re-read and the names already sent there skipped.
  let lastStep = opts.metricsAfterStep === undefined ? await repo.latestMetricStep(job.id) : opts.metricsAfterStep + 1;
  let sentAtLastStep = new Set<string>(opts.metricsAfterStep === undefined ? await namesAt(lastStep) : []);
  let finished = false;
  let busy = false;
  let again = false;

  async function namesAt(step: number): Promise<string[]> {
    const rows = await repo.metricsFrom(job.id, step, METRIC_ROWS_PER_QUERY);
    return rows.filter((r) => r.step === step).map((r) => r.name);
  }

  const write = (text: string) => {
    if (!finished) raw.write(text);
  };

  async function sendMetrics(): Promise<void> {
    for (;;) {
      const rows = await repo.metricsFrom(job.id, lastStep, METRIC_ROWS_PER_QUERY);
      const fresh = rows.filter((r) => r.step > lastStep || !sentAtLastStep.has(r.name));
      if (fresh.length === 0) return;
      for (const r of fresh) {
        if (r.step > lastStep) {
          lastStep = r.step;
          sentAtLastStep = new Set();
        }
        sentAtLastStep.add(r.name);
      }
      write(`event: metrics\ndata: ${JSON.stringify({ job_id: job.id, data: toSeries(fresh) })}\n\n`);
      if (rows.length < METRIC_ROWS_PER_QUERY) return;
    }
  }

  /** Sends whatever is new; a wake-up during a pass runs one more pass, never two at once. */
  async function pump(): Promise<void> {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        await sendMetrics();
        const events = await repo.events(job.id, lastEventId, EVENTS_PER_QUERY);
        for (const row of events) {
          const event = toEventResource(row);
          write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
          lastEventId = event.id;
          if (isTerminal(('status' in event.data ? event.data.status : undefined) ?? event.type)) {
            await sendMetrics();
            return end();
          }
        }
        if (events.length === EVENTS_PER_QUERY) again = true;
      } while (again && !finished);
    } catch (err) {
      request.log.error({ err, jobId: job.id }, 'job event stream failed');
      end();
    } finally {
      busy = false;
    }
  }

  let unsubscribe = () => {};
  let heartbeat: NodeJS.Timeout | undefined;
  function end() {
    if (finished) return;
    finished = true;
    live.delete(end);
    clearInterval(heartbeat);
    unsubscribe();
    raw.end();
  }
  raw.on('close', end);
  live.add(end);

  // Listening starts before the backlog is read, so an event committed in between is not missed;
  // wake-ups until then only mark that the first pass (which runs anyway) has work.
  busy = true;
  unsubscribe = await updates.subscribe(job.id, () => void pump());
  reply.hijack();
  if (finished) return unsubscribe(); // the client left while we subscribed
  // Headers set through the reply so far (the request id) are not sent by a hijacked reply by themselves.
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) raw.setHeader(name, value);
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  heartbeat = setInterval(() => write(': heartbeat\n\n'), HEARTBEAT_MS);
  busy = false;
  await pump();
  // Already finished before this stream's backlog (a reconnect after the end): nothing more will come.
  if (isTerminal(job.status)) end();
}
