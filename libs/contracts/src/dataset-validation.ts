import { z } from 'zod';

// Between the API and the child process it validates an uploaded dataset file in (its IPC channel):
// decoding a dataset can take gigabytes, which must never count against the API process.

export const DatasetValidationRequest = z.object({
  file: z.string(),
  limits: z.object({ maxBytes: z.number().int().positive(), maxFiles: z.number().int().positive(), maxPixelsPerImage: z.number().int().positive() }),
});
export type DatasetValidationRequest = z.infer<typeof DatasetValidationRequest>;

/** What validation learned about a dataset file (the row's statistics). */
export const DatasetStats = z.object({
  kind: z.string(),
  gzip: z.boolean(),
  imageCount: z.number().int().positive(),
  height: z.number().int().positive(),
  width: z.number().int().positive(),
  channels: z.number().int().positive(),
  classNames: z.array(z.string()).nullable(),
  /** Images per label index, when labelled. */
  classCounts: z.array(z.number().int().min(0)).nullable(),
  labelled: z.boolean(),
});
export type DatasetStats = z.infer<typeof DatasetStats>;

export const DatasetValidationResult = z.discriminatedUnion('outcome', [
  z.object({
    outcome: z.literal('valid'),
    stats: DatasetStats,
    /** A few images as PNG thumbnails (base64), for people to see what the dataset holds. */
    samples: z.array(z.object({ label: z.number().int().nullable(), png: z.base64() })),
  }),
  /** A problem with the data (a DatasetError of @moco/data): the client's to fix. */
  z.object({ outcome: z.literal('invalid'), code: z.string(), file: z.string(), message: z.string() }),
]);
export type DatasetValidationResult = z.infer<typeof DatasetValidationResult>;
