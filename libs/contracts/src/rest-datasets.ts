import { z } from 'zod';
import { PageQuery, page, Timestamp } from './rest-common.js';

export const DATASET_STATUSES = ['pending', 'ready', 'failed'] as const;

/** File names kept as the last segment of the object key: no folders, no dotfiles. */
export const SAFE_FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

export const Dataset = z
  .object({
    id: z.string(),
    project_id: z.string(),
    name: z.string(),
    status: z.enum(DATASET_STATUSES),
    source: z.enum(['upload', 's3']).describe('upload: bytes sent to the API; s3: an object registered in place'),
    format: z.string().nullable().describe('container as judged by content: tar, tar.gz, zip, idx, idx.gz'),
    source_uri: z.string().nullable().describe('s3: the URI it was registered from; null for uploads'),
    download_url: z.string().nullable().describe('uploads, once ready: where to download the file (a path under the API)'),
    bytes: z.number().int(),
    image_count: z.number().int().nullable(),
    height: z.number().int().nullable(),
    width: z.number().int().nullable(),
    channels: z.number().int().nullable(),
    class_names: z.array(z.string()).nullable(),
    class_counts: z.array(z.number().int()).nullable().describe('images per label index (the order of class_names), when labelled'),
    labelled: z.boolean(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    created_at: Timestamp,
  })
  .meta({ id: 'Dataset' });
export type Dataset = z.infer<typeof Dataset>;

export const DatasetPage = page(Dataset);

/** Query of an upload (the body is the file itself). */
export const UploadDatasetQuery = z.object({
  name: z.string().min(1).max(200).optional().describe('display name (default: the file name)'),
  filename: z
    .string()
    .regex(SAFE_FILE_NAME, 'letters, digits, ".", "_" and "-" only, not starting with "." (at most 200)')
    .optional()
    .describe('name the object is stored under (default: dataset.<format>)'),
});

export const RegisterDatasetRequest = z
  .object({
    source: z.string().regex(/^s3:\/\/[^/]+\/.+/, 'must be s3://bucket/key').describe('an object in S3 (same endpoint and credentials as the service)'),
    name: z.string().min(1).max(200).optional(),
  })
  .strict();
export type RegisterDatasetRequest = z.infer<typeof RegisterDatasetRequest>;

export const ListDatasetsQuery = PageQuery.extend({
  project_id: z.string().optional().describe('admin keys only: one project (default: every project)'),
});

/** Thumbnails kept per dataset (picked at validation); `?n=` asks for fewer. */
export const MAX_DATASET_SAMPLES = 64;

export const DatasetSamplesQuery = z.object({
  n: z.coerce.number().int().min(1).max(MAX_DATASET_SAMPLES).default(32).describe('how many (classes taken in turn)'),
});

export const DatasetSamples = z
  .object({
    dataset_id: z.string(),
    data: z.array(
      z.object({
        label: z.number().int().nullable().describe('label index, when labelled'),
        class_name: z.string().nullable(),
        png: z.base64().describe('a PNG thumbnail, base64: the image itself up to 64 pixels a side, shrunk beyond'),
      }),
    ),
  })
  .meta({ id: 'DatasetSamples' });
export type DatasetSamples = z.infer<typeof DatasetSamples>;
