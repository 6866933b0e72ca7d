export type DatasetErrorCode =
  | 'not_found'
  | 'unreadable_file'
  | 'unreadable_image'
  | 'unsupported_format'
  | 'bad_archive'
  | 'path_traversal'
  | 'unsafe_entry'
  | 'too_large'
  | 'too_many_files'
  | 'inconsistent_size'
  | 'empty_dataset'
  | 'bad_idx'
  | 'bad_cifar';

/** Every problem with the user's data surfaces as this, so the service can report it without a stack trace. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  readonly code: DatasetErrorCode;
  /** The offending file: a path on disk, or `archive:entry` for a file inside an archive. */
  readonly file: string;

  constructor(code: DatasetErrorCode, file: string, detail: string, options?: ErrorOptions) {
    super(`${file}: ${detail}`, options);
    this.code = code;
    this.file = file;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The same error naming `shown` wherever it named the server-side path `file` (a spool or cache
 * file): users see their dataset's name, never where a server keeps it.
 */
export function showFileAs(err: DatasetError, file: string, shown: string): DatasetError {
  const renamed = new DatasetError(err.code, err.file.replaceAll(file, shown), '', { cause: err.cause });
  renamed.message = err.message.replaceAll(file, shown);
  return renamed;
}
