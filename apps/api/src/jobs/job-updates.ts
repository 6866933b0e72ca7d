import { JOB_UPDATES_CHANNEL } from '@moco/db';
import type { FastifyBaseLogger } from 'fastify';
import pg from 'pg';

const RECONNECT_DELAY_MS = 1_000;

export interface JobUpdates {
  /** Calls `wake` whenever the job changes; resolves once listening, so nothing committed later is missed. */
  subscribe(jobId: string, wake: () => void): Promise<() => void>;
  close(): Promise<void>;
}

/**
 * One Postgres LISTEN connection for the whole process, fanned out to per-job subscribers (SSE
 * streams), instead of a connection per stream. Notifications only say "job X changed": each
 * subscriber then queries what is new, so a lost notification (reconnect) costs nothing but a
 * wake-up of everyone once the connection is back.
 */
export function createJobUpdates(databaseUrl: string, log: FastifyBaseLogger): JobUpdates {
  const subscribers = new Map<string, Set<() => void>>();
  let client: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const wakeAll = () => {
    for (const set of subscribers.values()) for (const wake of set) wake();
  };

  /** Re-listens while anyone is subscribed, then wakes everyone: they may have missed notifications. */
  function scheduleReconnect() {
    if (closed || reconnectTimer || subscribers.size === 0) return;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      ensureListening().then(wakeAll, (err: unknown) => {
        log.warn({ err }, 'job updates reconnect failed');
        scheduleReconnect();
      });
    }, RECONNECT_DELAY_MS);
  }

  function lost(c: pg.Client, err?: Error) {
    if (client !== c) return;
    log.warn({ err }, 'job updates connection lost; reconnecting');
    client = undefined;
    connecting = undefined;
    c.end().catch(() => undefined);
    scheduleReconnect();
  }

  async function connect(): Promise<void> {
    const c = new pg.Client({ connectionString: databaseUrl });
    c.on('notification', (msg) => {
      for (const wake of subscribers.get(msg.payload ?? '') ?? []) wake();
    });
    c.on('error', (err) => lost(c, err));
    c.on('end', () => lost(c));
    try {
      await c.connect();
      await c.query(`LISTEN ${JOB_UPDATES_CHANNEL}`);
    } catch (err) {
      c.end().catch(() => undefined);
      throw err;
    }
    if (closed) {
      await c.end();
      throw new Error('job updates are closed');
    }
    client = c;
  }

  function ensureListening(): Promise<void> {
    if (closed) return Promise.reject(new Error('job updates are closed'));
    connecting ??= connect().catch((err: unknown) => {
      connecting = undefined;
      throw err;
    });
    return connecting;
  }

  return {
    async subscribe(jobId, wake) {
      await ensureListening();
      let set = subscribers.get(jobId);
      if (!set) subscribers.set(jobId, (set = new Set()));
      set.add(wake);
      return () => {
        set.delete(wake);
        if (set.size === 0) subscribers.delete(jobId);
      };
    },
    async close() {
      closed = true;
      clearTimeout(reconnectTimer);
      const c = client;
      client = undefined;
      await c?.end();
    },
  };
}
