import { status, type ServiceDefinition } from '@grpc/grpc-js';
import { EmbedError } from './errors.js';

/** A request message that is not valid protobuf of its type, kept for the handler to refuse. */
class UnparsableMessage {
  constructor(readonly reason: string) {}
}

/**
 * The definition with request decoding that does not throw: grpc-js answers a message it cannot decode
 * with INTERNAL, which says "our fault"; the handler then answers INVALID_ARGUMENT (after authentication).
 */
export function withTolerantDecoding(definition: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
          } catch (error) {
            return new UnparsableMessage(error instanceof Error ? error.message : String(error));
          }
        },
      },
    ]),
  );
}

/** The decoded request. @throws EmbedError INVALID_ARGUMENT for one that did not decode. */
export function parsed<T>(request: T): T {
  if (request instanceof UnparsableMessage) throw new EmbedError(status.INVALID_ARGUMENT, `the request message does not decode: ${request.reason}`);
  return request;
}
