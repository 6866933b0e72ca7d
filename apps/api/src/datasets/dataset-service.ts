import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import type { Readable } from 'node:stream';
import type { Dataset, Page, RegisterDatasetRequest } from '@moco/contracts';
import { DatasetError, readDataset, sniffFile } from '@moco/data';
import { newId, type DatasetModel } from '@moco/db';
import { parseS3Uri, S3Store, type ObjectStore } from '@moco/storage';
import type { ApiConfig } from '../config.js';
import { ApiError, invalidParameter, notFound } from '../shared/api-error.js';
import { toPage } from '../shared/pagination.js';
import type { Principal } from '../shared/scope.js';
import type { DatasetRepository } from './dataset-repository.js';
import { SpoolTooLarge, spoolToTempFile } from './spool.js';

type Limits = Pick<ApiConfig, 'MAX_UPLOAD_BYTES' | 'MAX_DATASET_BYTES' | 'MAX_DATASET_FILES' | 'MAX_IMAGE_PIXELS' | 'UPLOAD_TEMP_DIR'>;

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

/** What validation learned about a dataset file (the row's statistics). */
interface Validated {
  kind: string;
  gzip: boolean;
  imageCount: number;
  height: number;
  width: number;
  channels: number;
  classNames: string[] | null;
  labelled: boolean;
}

export function toDatasetResource(row: DatasetModel): Dataset {
  return {
    id: row.id,
    project_id: row.projectId,
    name: row.name,
    status: row.status as Dataset['status'],
    source: row.source as Dataset['source'],
    format: row.format,
    uri: row.uri,
    bytes: Number(row.bytes),
    image_count: row.imageCount,
    height: row.height,
    width: row.width,
    channels: row.channels,
    class_names: row.classNames as string[] | null,
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
function defaultFileName(v: Validated): string {
  const base = v.kind === 'idx' ? 'dataset-images-idx3-ubyte' : `dataset.${v.kind}`;
  return v.gzip ? `${base}.gz` : base;
}

export type DatasetService = ReturnType<typeof createDatasetService>;

export function createDatasetService({ repo, store, config }: DatasetServiceDeps) {
  const tempDir = config.UPLOAD_TEMP_DIR ?? os.tmpdir();

  /**
   * Reads the whole dataset with the configured limits: decoding every image is the validation
   * (each must decode, within the pixel, file and byte limits). @moco/data has no cheaper path
   * that counts without decoding, so the decoded pixels (at most MAX_DATASET_BYTES) are held until
   * the statistics are taken, then dropped. `displayName` replaces the temp path in error messages.
   */
  async function validate(file: string, displayName: string, param: string): Promise<Validated> {
    try {
      const { kind, gzip } = await sniffFile(file);
      // A raw idx file is read explicitly: auto-detection would look for a labels file in the
      // shared temp folder, where another upload's could be.
      const ds = await readDataset(kind === 'idx' ? { format: 'idx', images: file } : { format: 'archive', path: file }, {
        maxBytes: config.MAX_DATASET_BYTES,
        maxFiles: config.MAX_DATASET_FILES,
        maxPixelsPerImage: config.MAX_IMAGE_PIXELS,
      });
      return {
        kind,
        gzip,
        imageCount: ds.count,
        height: ds.height,
        width: ds.width,
        channels: ds.channels,
        classNames: ds.classNames ?? null,
        labelled: ds.labels !== undefined,
      };
    } catch (err) {
      if (!(err instanceof DatasetError)) throw err;
      const message = err.message.replaceAll(file, displayName);
      throw new ApiError(422, 'invalid_dataset', message, param, [{ param, code: err.code, message }]);
    }
  }

  function statsOf(v: Validated) {
    return {
      status: 'ready',
      format: v.gzip ? `${v.kind}.gz` : v.kind,
      imageCount: v.imageCount,
      height: v.height,
      width: v.width,
      channels: v.channels,
      classNames: v.classNames ?? undefined,
      labelled: v.labelled,
    };
  }

  return {
    /** Spools the body (within MAX_UPLOAD_BYTES), validates it, stores it, then records it: nothing is left behind on failure. */
    async upload(principal: Principal, upload: Upload): Promise<Dataset> {
      const max = config.MAX_UPLOAD_BYTES;
      const tooLarge = () => new ApiError(413, 'payload_too_large', `upload is larger than the limit of ${max} bytes`, 'body');
      if (upload.contentLength !== undefined && upload.contentLength > max) throw tooLarge();
      const spooled = await spoolToTempFile(upload.body, tempDir, max).catch((err: unknown) => {
        throw err instanceof SpoolTooLarge ? tooLarge() : err;
      });
      try {
        const validated = await validate(spooled.path, upload.filename ?? 'upload', 'body');
        const id = newId('ds');
        const fileName = upload.filename ?? defaultFileName(validated);
        const key = `projects/${principal.projectId}/datasets/${id}/${fileName}`;
        await store.put(key, createReadStream(spooled.path), {
          contentLength: spooled.bytes,
          contentType: upload.contentType ?? 'application/octet-stream',
        });
        try {
          const row = await repo.insert({
            id,
            projectId: principal.projectId,
            name: upload.name ?? fileName,
            source: 'upload',
            objectKey: key,
            uri: store.describe(key),
            bytes: spooled.bytes,
            ...statsOf(validated),
          });
          return toDatasetResource(row);
        } catch (err) {
          await store.delete(key);
          throw err;
        }
      } finally {
        await rm(spooled.path, { force: true });
      }
    },

    /** Validates an object already in S3 (read through the store's credentials) and records it in place. */
    async register(principal: Principal, request: RegisterDatasetRequest): Promise<Dataset> {
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
          uri,
          bytes: spooled.bytes,
          ...statsOf(validated),
        });
        return toDatasetResource(row);
      } finally {
        await rm(spooled.path, { force: true });
      }
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
