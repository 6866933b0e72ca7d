import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';

/** What `put` accepts: bytes in memory, or a stream that is consumed without buffering it whole. */
export type PutBody = Buffer | Uint8Array | Readable | NodeJS.ReadableStream;

export interface PutOptions {
  contentType?: string;
  /** Expected size; when given, a body of any other size is rejected and nothing is stored. */
  contentLength?: number;
}

export interface PutResult {
  key: string;
  bytes: number;
}

export interface ObjectInfo {
  bytes: number;
  lastModified?: Date;
}

export interface ListedObject {
  key: string;
  bytes: number;
}

/**
 * Flat key -> bytes storage (S3 semantics). Keys are `/`-separated relative paths, e.g.
 * `datasets/<id>/images.bin`; see `validateKey` for what is rejected.
 */
export interface ObjectStore {
  /** Stores `body` under `key`, replacing any previous object; readers never see a partial object. */
  put(key: string, body: PutBody, opts?: PutOptions): Promise<PutResult>;
  /** @throws ObjectNotFoundError */
  get(key: string): Promise<Readable>;
  /** @throws ObjectNotFoundError */
  getBytes(key: string): Promise<Buffer>;
  head(key: string): Promise<ObjectInfo | null>;
  /** Succeeds whether or not the object exists. */
  delete(key: string): Promise<void>;
  /** Deletes every object whose key starts with `prefix` (non-empty); returns how many. */
  deletePrefix(prefix: string): Promise<number>;
  /** Objects whose key starts with `prefix` (plain string prefix, `''` for all), sorted by key. */
  list(prefix: string): AsyncIterable<ListedObject>;
  /** Readiness probe: throws a descriptive Error when the store is unusable. */
  check(): Promise<void>;
  /** User-facing location of `key`: `s3://bucket/key` or `file:///abs/path`. */
  describe(key: string): string;
}

export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';

  constructor(
    readonly key: string,
    location: string,
  ) {
    super(`Object not found: ${location}`);
  }
}

/** Returns `key` if it is a safe relative object key, else throws. */
export function validateKey(key: string): string {
  if (key === '') throw invalidKey(key, 'must not be empty');
  if (key.endsWith('/')) throw invalidKey(key, 'must not end with "/"');
  return validatePrefix(key);
}

/** Like `validateKey`, but allows `''` and a trailing `/` (used by list/deletePrefix). */
export function validatePrefix(prefix: string): string {
  if (prefix.includes('\0')) throw invalidKey(prefix, 'must not contain NUL');
  if (prefix.includes('\\')) throw invalidKey(prefix, 'must not contain "\\"');
  if (prefix.startsWith('/')) throw invalidKey(prefix, 'must be relative (no leading "/")');
  const segments = prefix.split('/');
  // The last segment of a prefix may be empty ("dir/") or partial, but never a dot segment.
  for (const [i, segment] of segments.entries()) {
    if (segment === '..' || segment === '.') throw invalidKey(prefix, `must not contain "${segment}" segments`);
    if (segment === '' && i < segments.length - 1) throw invalidKey(prefix, 'must not contain empty segments ("//")');
  }
  return prefix;
}

function invalidKey(key: string, reason: string): Error {
  return new Error(`Invalid object key ${JSON.stringify(key)}: ${reason}`);
}

/** Pass-through stream that counts bytes and enforces `PutOptions.contentLength`. */
export class ByteCounter extends Transform {
  bytes = 0;

  constructor(private readonly expectedBytes?: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  // Failing here (before 'end') makes the consumer abort, so a short or long body is never committed.
  override _flush(callback: TransformCallback): void {
    const expected = this.expectedBytes;
    callback(
      expected === undefined || expected === this.bytes
        ? null
        : new Error(`Body size mismatch: expected ${expected} bytes (contentLength), got ${this.bytes}`),
    );
  }
}

/** Wraps any `PutBody` in a `ByteCounter`; errors of a source stream surface on the returned stream. */
export function countBytes(body: PutBody, expectedBytes?: number): ByteCounter {
  const counter = new ByteCounter(expectedBytes);
  const source = body instanceof Uint8Array ? Readable.from([body]) : body;
  // pipeline (unlike pipe) destroys the counter with the source's error; the consumer reports it.
  pipeline(source, counter, () => {});
  return counter;
}
