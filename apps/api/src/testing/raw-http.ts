import net from 'node:net';

/** One response read off a raw socket. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RawExchange {
  responses: RawResponse[];
  /** Milliseconds from the first byte sent until the server closed the connection (or we gave up). */
  closedAfterMs: number;
  /** Whether the server closed the connection before `waitMs` ran out. */
  closedByServer: boolean;
}

/**
 * Sends bytes over a plain socket, as `send` writes them (all at once, in pieces, slowly), and
 * reads every response until the server closes or `waitMs` passes. For requests an HTTP client
 * library refuses to make: bad request lines, conflicting lengths, control bytes, partial sends.
 */
export function rawExchange(
  url: string,
  send: (socket: net.Socket) => Promise<void> | void,
  waitMs: number,
): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    let started = 0;
    let closedByServer = false;
    const giveUp = setTimeout(() => socket.destroy(), waitMs);
    socket.on('data', (d) => chunks.push(d));
    // The server may reset a connection it refused (it does not read the rest): what arrived still counts.
    socket.on('error', () => {});
    socket.on('end', () => {
      closedByServer = true;
    });
    socket.on('close', (hadError) => {
      clearTimeout(giveUp);
      try {
        const closedAfterMs = performance.now() - started;
        resolve({ responses: parseResponses(Buffer.concat(chunks)), closedAfterMs, closedByServer: closedByServer || hadError });
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    socket.on('connect', () => {
      started = performance.now();
      Promise.resolve(send(socket)).catch(() => socket.destroy());
    });
  });
}

export const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Writes `text` a few bytes at a time, `everyMs` apart, while the socket stays open. */
export async function drip(socket: net.Socket, text: string, everyMs: number, bytesEach = 1): Promise<void> {
  for (let i = 0; i < text.length && !socket.destroyed; i += bytesEach) {
    socket.write(text.slice(i, i + bytesEach));
    await pause(everyMs);
  }
}

/** Splits a byte stream into HTTP/1.1 responses (Content-Length, chunked, or up to the close). */
export function parseResponses(data: Buffer): RawResponse[] {
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', at);
    if (headEnd < 0) throw new Error(`truncated response head: ${JSON.stringify(data.subarray(at, at + 200).toString('latin1'))}`);
    const [statusLine = '', ...lines] = data.subarray(at, headEnd).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
    if (!Number.isInteger(status)) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let bodyStart = headEnd + 4;
    let body: Buffer;
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const sizeEnd = data.indexOf('\r\n', bodyStart);
        if (sizeEnd < 0) break;
        const size = parseInt(data.subarray(bodyStart, sizeEnd).toString('latin1'), 16);
        bodyStart = sizeEnd + 2;
        if (!(size > 0)) {
          bodyStart += 2;
          break;
        }
        parts.push(data.subarray(bodyStart, bodyStart + size));
        bodyStart += size + 2;
      }
      body = Buffer.concat(parts);
      at = bodyStart;
    } else {
      const length = headers['content-length'] === undefined ? data.length - bodyStart : Number(headers['content-length']);
      body = data.subarray(bodyStart, bodyStart + length);
      at = bodyStart + length;
    }
    responses.push({ status, headers, body: body.toString('utf8') });
  }
  return responses;
}
