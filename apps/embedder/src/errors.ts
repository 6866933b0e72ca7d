import { status, type ServiceError } from '@grpc/grpc-js';
import { ModelError } from '@moco/models';

/** An error with the gRPC status the caller gets; its message is shown to the caller. */
export class EmbedError extends Error {
  override name = 'EmbedError';

  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

// Details travel in an HTTP/2 trailer: echoing a client's megabyte-long alias or request id there would fail the status itself.
const MAX_DETAILS_CHARS = 500;

/** A caller's message, cut to what a trailer carries. */
export function shortDetails(details: string): string {
  return details.length > MAX_DETAILS_CHARS ? `${details.slice(0, MAX_DETAILS_CHARS)}...` : details;
}

/** The status a caller sees; unexpected errors become INTERNAL without their details, which are logged. */
export function toServiceError(error: unknown, log: (error: unknown) => void): Partial<ServiceError> {
  if (error instanceof EmbedError) return { code: error.code, details: shortDetails(error.message) };
  if (error instanceof ModelError) {
    return { code: error.code === 'not_found' ? status.NOT_FOUND : status.INVALID_ARGUMENT, details: shortDetails(error.message) };
  }
  log(error);
  return { code: status.INTERNAL, details: 'internal error' };
}
