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

/** The status a caller sees; unexpected errors become INTERNAL without their details, which are logged. */
export function toServiceError(error: unknown, log: (error: unknown) => void): Partial<ServiceError> {
  if (error instanceof EmbedError) return { code: error.code, details: error.message };
  if (error instanceof ModelError) {
    return { code: error.code === 'not_found' ? status.NOT_FOUND : status.INVALID_ARGUMENT, details: error.message };
  }
  log(error);
  return { code: status.INTERNAL, details: 'internal error' };
}
