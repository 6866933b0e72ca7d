import type { JobEvent, MetricSeries } from '@moco/contracts';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Http } from './http.js';

export type JobStreamItem =
  | { kind: 'event'; event: JobEvent }
  | { kind: 'metrics'; series: MetricSeries[] };

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export function isTerminalStatus(status: string): boolean {
  return TERMINAL.has(status);
}

export function isTerminalEvent(event: JobEvent): boolean {
  const status = 'status' in event.data ? event.data.status : undefined;
  return isTerminalStatus(status ?? event.type);
}

/**
 * A job's live event stream (Server-Sent Events) as an async iterator. A dropped connection is
 * resumed from the last event id, so no event is missed or repeated; it ends after the terminal
 * event or when `signal` aborts.
 */
export async function* jobStream(
  http: Http,
  jobId: string,
  opts: { after?: number; metricsAfterStep?: number; signal?: AbortSignal } = {},
): AsyncGenerator<JobStreamItem> {
  let lastId = opts.after;
  let metricsAfterStep = opts.metricsAfterStep;
  for (;;) {
    const res = await http.fetch(`/v1/jobs/${encodeURIComponent(jobId)}/events`, {
      headers: { accept: 'text/event-stream', ...(lastId !== undefined ? { 'last-event-id': String(lastId) } : {}) },
      query: { metrics_after_step: metricsAfterStep },
      signal: opts.signal,
      timeoutMs: 0,
      retry: true,
    });
    // The job finished and nothing is left after lastId.
    if (res.status === 204) return;
    const queue: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (m) => queue.push(m) });
    let ended = false;
    try {
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        while (queue.length) {
          const msg = queue.shift()!;
          if (msg.event === 'metrics') {
            const { data } = JSON.parse(msg.data) as { data: MetricSeries[] };
            for (const s of data) {
              const last = s.points.at(-1);
              if (last) metricsAfterStep = Math.max(metricsAfterStep ?? 0, last[0] - 1);
            }
            yield { kind: 'metrics', series: data };
            continue;
          }
          const event = JSON.parse(msg.data) as JobEvent;
          lastId = event.id;
          yield { kind: 'event', event };
          if (isTerminalEvent(event)) ended = true;
        }
      }
    } catch {
      // A reset connection is retried below from the last event id; an abort is the caller's.
      if (opts.signal?.aborted) throw opts.signal.reason;
    }
    if (ended) return;
    // The server ends a stream only after the terminal event; any other close is a dropped
    // connection (proxy timeout, API restart): reconnect from the last event id after a pause.
    await sleep(500, undefined, { signal: opts.signal });
  }
}
