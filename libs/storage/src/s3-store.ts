import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { ObjectStoreConfig } from '@moco/contracts';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import {
  countBytes,
  ObjectNotFoundError,
  validateKey,
  validatePrefix,
  type ListedObject,
  type ObjectInfo,
  type ObjectStore,
  type PutBody,
  type PutOptions,
  type PutResult,
} from './object-store.js';

/** An S3 store's settings: the contract's s3 object store config (see @moco/contracts). */
export type S3StoreOptions = Omit<Extract<ObjectStoreConfig, { kind: 's3' }>, 'kind'>;
export type ChecksumMode = NonNullable<S3StoreOptions['requestChecksumCalculation']>;

/** Objects in an S3 (or S3-compatible) bucket, optionally under a key prefix. */
export class S3Store implements ObjectStore {
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  /** `prefix` + "/" (or ""): what is prepended to every key. */
  private readonly base: string;

  /** `client` is for sharing one client (and its connection pool) between stores; see `forBucket`. */
  constructor(
    private readonly options: S3StoreOptions,
    client?: S3Client,
  ) {
    this.bucket = checkBucketName(options.bucket);
    this.prefix = normalizePrefix(options.prefix ?? '');
    this.base = this.prefix === '' ? '' : `${this.prefix}/`;
    this.client = client ?? createClient(options);
  }

  /** A store over another bucket/prefix with the same endpoint and credentials (e.g. an external dataset). */
  forBucket(bucket: string, prefix = ''): S3Store {
    return new S3Store({ ...this.options, bucket, prefix }, this.client);
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    const Key = this.fullKey(key);
    const counter = countBytes(body, opts.contentLength);
    // Upload sends one PutObject for bodies under 5 MiB and a multipart upload otherwise, buffering
    // at most queueSize (4) parts of 5 MiB; a known length lets it size parts for very large bodies.
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key,
        Body: counter,
        ContentType: opts.contentType,
        ContentLength: opts.contentLength,
      },
    });
    try {
      await upload.done();
    } catch (err) {
      // Prefer the body's own failure (client disconnect, size mismatch) over a follow-up error such as
      // a failed AbortMultipartUpload, which is what Upload would otherwise report.
      throw counter.errored ?? err;
    } finally {
      counter.destroy();
    }
    return { key, bytes: counter.bytes };
  }

  async get(key: string): Promise<Readable> {
    try {
      const { Body } = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      // In Node the SDK's streaming body is an http.IncomingMessage.
      return Body as Readable;
    } catch (err) {
      throw errorName(err) === 'NoSuchKey' ? new ObjectNotFoundError(key, this.describe(key)) : err;
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    return buffer(await this.get(key));
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      return { bytes: out.ContentLength ?? 0, lastModified: out.LastModified };
    } catch (err) {
      if (errorName(err) === 'NotFound') return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
  }

  async deletePrefix(prefix: string): Promise<number> {
    if (prefix === '') throw new Error('deletePrefix requires a non-empty prefix');
    let deleted = 0;
    // A listed page holds at most 1000 keys, the DeleteObjects limit.
    for await (const page of this.pages(prefix)) {
      if (page.length === 0) continue;
      const out = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: page.map(({ key }) => ({ Key: this.fullKey(key) })), Quiet: true },
        }),
      );
      const failed = out.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw new Error(
          `Failed to delete ${failed.length} object(s) under s3://${this.bucket}/${this.base}${prefix}: ${first?.Key}: ${first?.Code} ${first?.Message}`,
        );
      }
      deleted += page.length;
    }
    return deleted;
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    for await (const page of this.pages(prefix)) yield* page;
  }

  private async *pages(prefix: string): AsyncGenerator<ListedObject[]> {
    const paginator = paginateListObjectsV2(
      { client: this.client, pageSize: this.options.listPageSize ?? 1000 },
      { Bucket: this.bucket, Prefix: this.base + validatePrefix(prefix) },
    );
    for await (const page of paginator) {
      yield (page.Contents ?? [])
        // Keys ending in "/" are folder placeholders made by consoles and tools, not data.
        .filter((o) => o.Key !== undefined && !o.Key.endsWith('/'))
        .map((o) => ({ key: (o.Key as string).slice(this.base.length), bytes: o.Size ?? 0 }));
    }
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const reason =
        status === 404
          ? 'the bucket does not exist'
          : status === 403
            ? 'access denied (check the credentials and bucket policy)'
            : (err as Error).message || errorName(err);
      const where = this.options.endpoint ?? `AWS region ${this.options.region}`;
      throw new Error(`S3 bucket "${this.bucket}" at ${where} is not usable: ${reason}`, { cause: err });
    }
  }

  describe(key: string): string {
    return `s3://${this.bucket}/${this.fullKey(key)}`;
  }

  private fullKey(key: string): string {
    return this.base + validateKey(key);
  }
}

/** Splits `s3://bucket[/prefix]` (as users type it to register an existing dataset). */
export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(uri);
  if (!match) throw new Error(`Invalid S3 URI ${JSON.stringify(uri)}: expected s3://bucket or s3://bucket/prefix`);
  try {
    return { bucket: checkBucketName(match[1] ?? ''), prefix: normalizePrefix(match[2] ?? '') };
  } catch (err) {
    throw new Error(`Invalid S3 URI ${JSON.stringify(uri)}: ${(err as Error).message}`);
  }
}

function checkBucketName(bucket: string): string {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error(
      `invalid bucket name ${JSON.stringify(bucket)} (3-63 characters: lowercase letters, digits, "." and "-")`,
    );
  }
  return bucket;
}

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '' : validateKey(trimmed);
}

function createClient(options: S3StoreOptions): S3Client {
  const { accessKeyId, secretAccessKey } = options;
  if (!accessKeyId !== !secretAccessKey) {
    throw new Error('S3 store: set both accessKeyId and secretAccessKey, or neither (to use the default credential chain)');
  }
  return new S3Client({
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    requestChecksumCalculation: options.requestChecksumCalculation ?? 'WHEN_REQUIRED',
    responseChecksumValidation: options.responseChecksumValidation ?? 'WHEN_REQUIRED',
  });
}

function errorName(err: unknown): string | undefined {
  return (err as { name?: string } | null)?.name;
}
