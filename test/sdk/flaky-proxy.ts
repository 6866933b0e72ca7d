import http from 'node:http';

/**
 * A reverse proxy in front of the API that misbehaves on purpose, so the SDK's retries run against
 * real sockets: `plan` says, per incoming request, whether to answer 503, reset the connection
 * before forwarding, forward but drop the answer (the API did the work; the client never hears), or
 * pass it through.
 */
export type Fault = 'pass' | '503' | 'reset' | 'drop-response';

export async function startFlakyProxy(target: string, plan: (n: number, req: http.IncomingMessage) => Fault) {
  let n = 0;
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const fault = plan(n++, req);
    seen.push(`${req.method} ${req.url} ${fault}`);
    if (fault === '503') {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'internal_error', message: 'flaky proxy', param: null } }));
      return;
    }
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
      if (fault === 'drop-response') {
        up.resume();
        up.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((done) => { server.closeAllConnections(); server.close(() => done()); }),
  };
}
