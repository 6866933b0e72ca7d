import type { ErrorDetail } from '@moco/contracts';

/** An error answer of the API, carrying its `{code, message, param}`; branch on `code`, never on text. */
export class MocoApiError extends Error {
  override name = 'MocoApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly details: ErrorDetail[] = [],
    readonly requestId: string | null = null,
  ) {
    super(message);
  }
}

/** The request never got an answer (refused, reset, timed out) after every retry. */
export class MocoConnectionError extends Error {
  override name = 'MocoConnectionError';
}
