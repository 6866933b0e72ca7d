import { listen, type Listener } from '@moco/db';
import { MODEL_UPDATES_CHANNEL, parseModelUpdate, type ModelUpdate } from './models.js';

export type ModelUpdateListener = Listener;

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
  return listen(
    databaseUrl,
    MODEL_UPDATES_CHANNEL,
    {
      onNotification: (payload) => {
        const update = parseModelUpdate(payload);
        if (update) handlers.onUpdate(update);
      },
      onConnect: handlers.onConnect,
      onError: handlers.onError,
    },
    opts,
  );
}
