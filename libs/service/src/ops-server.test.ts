import { afterEach, describe, expect, it } from 'vitest';
import { createServiceRegistry, startOpsServer } from './ops-server.js';

let close: (() => Promise<void>) | undefined;
afterEach(async () => close?.());

describe('ops server', () => {
  it('answers /healthz, /readyz with every check (a hung one fails after its timeout) and /metrics', async () => {
    const failures: string[] = [];
    const { server, url } = (await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      registry: createServiceRegistry(),
      checks: {
        up: () => 'ok',
        down: () => Promise.reject(new Error('refused')),
        hung: () => new Promise(() => {}),
        throws: () => {
          throw new Error('sync failure');
        },
      },
      onCheckFailure: (name) => failures.push(name),
    }))!;
    close = () => server.close();

    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'unavailable', checks: { up: 'ok', down: 'failed', hung: 'failed', throws: 'failed' } });
    expect(failures.sort()).toEqual(['down', 'hung', 'throws']);
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toContain('nodejs_eventloop_lag_seconds');
  });

  it('is not served without a port', async () => {
    expect(await startOpsServer({ host: '127.0.0.1', port: undefined, registry: createServiceRegistry(), checks: {} })).toBeNull();
  });

  it('is ready when every check answers', async () => {
    const { server, url } = (await startOpsServer({ host: '127.0.0.1', port: 0, registry: createServiceRegistry(), checks: { a: async () => 1 } }))!;
    close = () => server.close();
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', checks: { a: 'ok' } });
  });
});
