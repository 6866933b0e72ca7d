import pg from 'pg';

export interface Listener {
  /** Resolves once the first LISTEN is in place. */
  ready: Promise<void>;
  close(): Promise<void>;
}

export interface ListenHandlers {
  onNotification: (payload: string) => void;
  /** After every (re)connection: notifications sent while it was down are lost, so re-read what may have changed. */
  onConnect?: () => void;
  /** The connection failed or dropped (a retry follows): from now until `onConnect`, notifications are missed. */
  onError?: (error: Error) => void;
}

/** LISTENs on `channel` on a connection of its own, reconnecting after `retryMs` when the connection drops. */
export function listen(databaseUrl: string, channel: string, handlers: ListenHandlers, opts: { retryMs?: number } = {}): Listener {
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
    c.on('end', () => lost(new Error(`listener on ${channel}: connection ended`)));
    c.on('notification', (msg) => {
      if (msg.channel === channel) handlers.onNotification(msg.payload ?? '');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
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
