import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';

// gRPC calls with the bytes, metadata and endings under the test's control (fault tests): messages go
// out as given (valid protobuf or not) and come back as bytes, and any outcome is a result, not a throw.

export interface CallResult {
  code: grpc.status;
  details: string;
  /** Response messages, as received. */
  responses: Buffer[];
}

const identity = (b: Buffer) => b;

export function metadataOf(headers: Record<string, string>): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return metadata;
}

export class RawGrpcClient {
  readonly client: grpc.Client;

  constructor(address: string, maxMessageBytes: number) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': maxMessageBytes,
      'grpc.max_receive_message_length': maxMessageBytes,
    });
  }

  unary(path: string, message: Buffer, metadata: grpc.Metadata, deadlineMs: number): Promise<CallResult> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(path, identity, identity, message, metadata, { deadline: Date.now() + deadlineMs }, (error, response) =>
        resolve(error ? { code: error.code, details: error.details, responses: [] } : { code: grpc.status.OK, details: '', responses: [response!] }),
      );
    });
  }

  /**
   * A streaming call (server or bidirectional: `path` decides how the server reads it): writes
   * `messages`, half-closes when told to, and cancels after `cancelAfter` responses (0: at once) when given.
   */
  stream(
    path: string,
    messages: Buffer[],
    opts: { metadata: grpc.Metadata; deadlineMs: number; halfClose: boolean; cancelAfter?: number },
  ): Promise<CallResult> {
    return new Promise((resolve) => {
      const responses: Buffer[] = [];
      const call = this.client.makeBidiStreamRequest(path, identity, identity, opts.metadata, { deadline: Date.now() + opts.deadlineMs });
      call.on('data', (response: Buffer) => {
        responses.push(response);
        if (responses.length === opts.cancelAfter) call.cancel();
      });
      call.on('error', () => {}); // the status below says it all
      call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details, responses }));
      for (const m of messages) call.write(m);
      if (opts.halfClose) call.end();
      if (opts.cancelAfter === 0) setImmediate(() => call.cancel());
    });
  }

  close(): void {
    this.client.close();
  }
}

/**
 * A client that vanishes mid-call: opens the call over a fresh HTTP/2 connection, sends the metadata
 * and the first `sentBytes` of a length-prefixed message, then destroys the socket without any
 * RST_STREAM or GOAWAY (a client process killed, a cable pulled).
 */
export async function vanishMidCall(address: string, path: string, headers: Record<string, string>, message: Buffer, sentBytes: number): Promise<void> {
  const { hostname, port } = new URL(`http://${address}`);
  // Our own socket: the session's is a proxy that refuses destroy().
  const socket = net.connect(Number(port), hostname.replace(/^\[|\]$/g, ''));
  socket.on('error', () => {});
  const session = http2.connect(`http://${address}`, { createConnection: () => socket });
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  const request = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  request.on('error', () => {});
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  await new Promise<void>((resolve) => request.write(frame.subarray(0, Math.min(frame.length, sentBytes)), () => resolve()));
  // Let the server start on what it got before the client disappears.
  await new Promise((resolve) => setTimeout(resolve, 20));
  socket.destroy();
}
