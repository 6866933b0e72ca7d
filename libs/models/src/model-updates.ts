import pg from 'pg';
import { MODEL_UPDATES_CHANNEL, parseModelUpdate, type ModelUpdate } from './models.js';

export interface ModelUpdateListener {
  /** Resolves once the first LISTEN is in place. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * LISTENs on `MODEL_UPDATES_CHANNEL` on a connection of its own, reconnecting after `retryMs` when the
 * connection drops. Notifications sent while it is down are lost, so `onConnect` runs after every
 * (re)connection: the place to re-read whatever may have changed meanwhile.
 */
export function listenModelUpdates(
  databaseUrl: string,
  handlers: { onUpdate: (update: ModelUpdate) => void; onConnect?: () => void; onError?: (error: Error) => void },
  opts: { retryMs?: number } = {},
): ModelUpdateListener {
  const retryMs = opts.retryMs ?? 1000;
  let client: pg.Client | null = null;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const connect = async () => {
    const c = new pg.Client({ connectionString: databaseUrl });
    client = c;
    // One handler for a failed connect and a dropped connection: both retry later.
    const lost = (error: Error) => {
      if (client !== c) return;
      client = null;
      c.end().catch(() => {});
      if (closed) return;
      handlers.onError?.(error);
      retry = setTimeout(() => void connect(), retryMs);
    };
    c.on('error', lost);
    c.on('end', () => lost(new Error('model update listener: connection ended')));
    c.on('notification', (msg) => {
      const update = msg.channel === MODEL_UPDATES_CHANNEL ? parseModelUpdate(msg.payload) : null;
      if (update) handlers.onUpdate(update);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${MODEL_UPDATES_CHANNEL}`);
    } catch (error) {
      lost(error as Error);
      return;
    }
    handlers.onConnect?.();
    markReady();
  };
  void connect();

  return {
    ready,
    async close() {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
