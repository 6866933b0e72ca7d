import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import type { Readable } from 'node:stream';
import type { Dataset, DatasetSamples, DatasetStats, DatasetValidationResult, Page, RegisterDatasetRequest } from '@moco/contracts';
import { newId, type DatasetModel, type Prisma } from '@moco/db';
import { parseS3Uri, S3Store, type ObjectStore } from '@moco/storage';
import type { ApiConfig } from '../config.js';
import { ApiError, invalidParameter, notFound, serverBusy } from '../shared/api-error.js';
import { objectChecksum, withStoredFile, type Download } from '../shared/downloads.js';
import { toPage } from '../shared/pagination.js';
import type { Principal } from '../shared/scope.js';
import type { DatasetRepository } from './dataset-repository.js';
import { SpoolTooLarge, spoolToTempFile } from './spool.js';
import { createDatasetValidator } from './validate-dataset.js';

type Limits = Pick<
  ApiConfig,
  | 'MAX_UPLOAD_BYTES'
  | 'MAX_DATASET_BYTES'
  | 'MAX_DATASET_FILES'
  | 'MAX_IMAGE_PIXELS'
  | 'UPLOAD_TEMP_DIR'
  | 'MAX_CONCURRENT_UPLOADS'
  | 'UPLOAD_RETRY_AFTER_S'
  | 'SWEEP_GRACE_S'
>;

export interface DatasetServiceDeps {
  repo: DatasetRepository;
  store: ObjectStore;
  config: Limits;
}

export interface Upload {
  body: Readable;
  name?: string;
  filename?: string;
  contentLength?: number;
  contentType?: string;
}

export function toDatasetResource(row: DatasetModel): Dataset {
  return {
    id: row.id,
    project_id: row.projectId,
    name: row.name,
    status: row.status as Dataset['status'],
    source: row.source as Dataset['source'],
    format: row.format,
    // The server's own storage location is never shown: a caller's s3:// source is theirs.
    source_uri: row.source === 's3' ? row.uri : null,
    download_url: row.objectKey && row.status === 'ready' ? `/v1/datasets/${encodeURIComponent(row.id)}/download` : null,
    bytes: Number(row.bytes),
    image_count: row.imageCount,
    height: row.height,
    width: row.width,
    channels: row.channels,
    class_names: row.classNames as string[] | null,
    class_counts: row.classCounts as number[] | null,
    labelled: row.labelled,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? '' } : null,
    created_at: row.createdAt.toISOString(),
  };
}

/**
 * The stored name when the client gave none. A raw idx file keeps "images-idx3" in its name: readers
 * that look for the labels file beside it derive the labels name from it, and would otherwise take
 * the file for its own labels.
 */
function defaultFileName(v: DatasetStats): string {
  const base = v.kind === 'idx' ? 'dataset-images-idx3-ubyte' : `dataset.${v.kind}`;
  return v.gzip ? `${base}.gz` : base;
}

export type DatasetService = ReturnType<typeof createDatasetService>;

/** The spool folder of uploads: the configured one, else the OS temp folder. */
export function spoolDir(config: Pick<ApiConfig, 'UPLOAD_TEMP_DIR'>): string {
  return config.UPLOAD_TEMP_DIR ?? os.tmpdir();
}

export function createDatasetService({ repo, store, config }: DatasetServiceDeps) {
  const tempDir = spoolDir(config);
  const validator = createDatasetValidator();
  let running = 0;

  /**
   * At most MAX_CONCURRENT_UPLOADS at once, from the first byte: each holds a spool file and a
   * validation process. More are refused, not queued, since a queue would hold their sockets too.
   */
  async function inUploadSlot<T>(task: () => Promise<T>): Promise<T> {
    const max = config.MAX_CONCURRENT_UPLOADS;
    if (running >= max) throw serverBusy(`${max} uploads are in progress, the most this server takes at once; retry later`, config.UPLOAD_RETRY_AFTER_S);
    running += 1;
    try {
      return await task();
    } finally {
      running -= 1;
    }
  }

  type Validated = Extract<DatasetValidationResult, { outcome: 'valid' }>;

  /** Validates the spooled file in a child process; `displayName` replaces the spool path in error messages. */
  async function validate(file: string, displayName: string, param: string): Promise<Validated> {
    const result = await validator.validate({
      file,
      limits: { maxBytes: config.MAX_DATASET_BYTES, maxFiles: config.MAX_DATASET_FILES, maxPixelsPerImage: config.MAX_IMAGE_PIXELS },
    });
    if (result.outcome === 'valid') return result;
    const message = result.message.replaceAll(file, displayName);
    throw new ApiError(422, 'invalid_dataset', message, param, [{ param, code: result.code, message }]);
  }

  /** The row's columns from what validation learned, its thumbnails included. */
  function statsOf({ stats: v, samples }: Validated) {
    return {
      format: v.gzip ? `${v.kind}.gz` : v.kind,
      imageCount: v.imageCount,
      height: v.height,
      width: v.width,
      channels: v.channels,
      classNames: v.classNames ?? undefined,
      classCounts: v.classCounts ?? undefined,
      labelled: v.labelled,
      samples: { create: samples.map((t, index) => ({ index, label: t.label, png: Buffer.from(t.png, 'base64') })) },
    };
  }

  /**
   * Stores a validated file under a row that is `pending` until the object is whole, its heartbeat
   * refreshed meanwhile: a crash at any point leaves a pending row that a sweep (of any replica)
   * removes with its object once the heartbeat is stale, and never an object without a row.
   */
  async function storeUnderPendingRow(row: Prisma.DatasetUncheckedCreateInput & { objectKey: string; bytes: number }, file: string, contentType: string) {
    await repo.insert({ ...row, status: 'pending' });
    const beat = setInterval(() => void repo.touchPending(row.id).catch(() => undefined), (config.SWEEP_GRACE_S * 1000) / 4);
    try {
      await store.put(row.objectKey, createReadStream(file), { contentLength: row.bytes, contentType });
      const ready = await repo.markReady(row.id);
      if (!ready) throw new Error(`dataset ${row.id} was swept while its object was being written`);
      return ready;
    } catch (err) {
      await store.delete(row.objectKey);
      await repo.deletePending(row.id);
      throw err;
    } finally {
      clearInterval(beat);
    }
  }

  /** Validates an object already in S3 (read through the store's credentials) and records it in place. */
  async function registerInPlace(principal: Principal, request: RegisterDatasetRequest): Promise<Dataset> {
    if (!(store instanceof S3Store)) {
      throw invalidParameter('source', 'registering an s3:// dataset needs STORAGE_KIND=s3; upload the file instead');
    }
    let location: { bucket: string; prefix: string };
    try {
      location = parseS3Uri(request.source);
    } catch (err) {
      throw invalidParameter('source', (err as Error).message);
    }
    const uri = `s3://${location.bucket}/${location.prefix}`;
    const remote = store.forBucket(location.bucket);
    const max = config.MAX_UPLOAD_BYTES;
    const unreadable = (err: unknown) => {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== undefined && status >= 400 && status < 500) {
        return invalidParameter('source', `cannot read ${uri}: ${(err as Error).name} (HTTP ${status})`);
      }
      return err;
    };
    const info = await remote.head(location.prefix).catch((err: unknown) => {
      throw unreadable(err);
    });
    if (!info) throw invalidParameter('source', `no object at ${uri}`);
    const tooLarge = () => invalidParameter('source', `${uri} is larger than the limit of ${max} bytes`);
    if (info.bytes > max) throw tooLarge();
    const spooled = await spoolToTempFile(await remote.get(location.prefix), tempDir, max).catch((err: unknown) => {
      throw err instanceof SpoolTooLarge ? tooLarge() : unreadable(err);
    });
    try {
      const validated = await validate(spooled.path, uri, 'source');
      const row = await repo.insert({
        id: newId('ds'),
        projectId: principal.projectId,
        name: request.name ?? location.prefix.slice(location.prefix.lastIndexOf('/') + 1),
        source: 's3',
        status: 'ready',
        uri,
        bytes: spooled.bytes,
        ...statsOf(validated),
      });
      return toDatasetResource(row);
    } finally {
      await rm(spooled.path, { force: true });
    }
  }

  return {
    /** Stops the spare validation process. */
    close: () => validator.close(),

    /** Spools the body (within MAX_UPLOAD_BYTES), validates it, stores it under a pending row, then marks it ready. */
    upload(principal: Principal, upload: Upload): Promise<Dataset> {
      return inUploadSlot(async () => {
        const max = config.MAX_UPLOAD_BYTES;
        const tooLarge = () => new ApiError(413, 'payload_too_large', `upload is larger than the limit of ${max} bytes`, 'body');
        if (upload.contentLength !== undefined && upload.contentLength > max) throw tooLarge();
        const spooled = await spoolToTempFile(upload.body, tempDir, max).catch((err: unknown) => {
          throw err instanceof SpoolTooLarge ? tooLarge() : err;
        });
        try {
          const validated = await validate(spooled.path, upload.filename ?? 'upload', 'body');
          const id = newId('ds');
          const fileName = upload.filename ?? defaultFileName(validated.stats);
          const key = `projects/${principal.projectId}/datasets/${id}/${fileName}`;
          const row = await storeUnderPendingRow(
            {
              id,
              projectId: principal.projectId,
              name: upload.name ?? fileName,
              source: 'upload',
              objectKey: key,
              uri: store.describe(key),
              bytes: spooled.bytes,
              ...statsOf(validated),
            },
            spooled.path,
            upload.contentType ?? 'application/octet-stream',
          );
          return toDatasetResource(row);
        } finally {
          await rm(spooled.path, { force: true });
        }
      });
    },

    /** Registers an object already in S3, in place. */
    register(principal: Principal, request: RegisterDatasetRequest): Promise<Dataset> {
      return inUploadSlot(() => registerInPlace(principal, request));
    },

    /** An uploaded dataset's file, to stream back (its checksum computed on the first download and kept). */
    async download(projectId: string | undefined, id: string): Promise<Download> {
      const row = await repo.findById(projectId, id);
      if (!row) throw notFound('dataset', id);
      if (!row.objectKey || row.status !== 'ready') {
        const why = row.objectKey ? `it is ${row.status}` : 'it was registered in place: read it from its source_uri';
        throw new ApiError(404, 'not_found', `dataset ${id} has no file to download (${why})`);
      }
      const key = row.objectKey;
      const sha256 = await withStoredFile('dataset', id, () => objectChecksum(store, key, `projects/${row.projectId}/exports/${row.id}/dataset`));
      const filename = row.objectKey.slice(row.objectKey.lastIndexOf('/') + 1);
      return { bytes: Number(row.bytes), sha256, filename, contentType: 'application/octet-stream', open: () => store.get(key) };
    },

    /** The first `n` thumbnails picked at validation (none for a dataset validated before they were kept). */
    async samples(projectId: string | undefined, id: string, n: number): Promise<DatasetSamples> {
      const row = await repo.findById(projectId, id);
      if (!row) throw notFound('dataset', id);
      const names = row.classNames as string[] | null;
      const samples = await repo.samples(id, n);
      return {
        dataset_id: id,
        data: samples.map((s) => ({ label: s.label, class_name: s.label === null ? null : (names?.[s.label] ?? null), png: Buffer.from(s.png).toString('base64') })),
      };
    },

    async get(projectId: string | undefined, id: string): Promise<Dataset> {
      const row = await repo.findById(projectId, id);
      if (!row) throw notFound('dataset', id);
      return toDatasetResource(row);
    },

    async list(projectId: string | undefined, query: { limit: number; after?: string }): Promise<Page<Dataset>> {
      const rows = await repo.list(projectId, query.after, query.limit + 1);
      return toPage(rows, query.limit, (r) => r.id, toDatasetResource);
    },
  };
}
