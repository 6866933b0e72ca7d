// Validates one uploaded dataset file in a process of its own (started by validate-dataset.ts):
// decoding every image may hold up to MAX_DATASET_BYTES, which must never count against the API.
import { DatasetValidationRequest, MAX_DATASET_SAMPLES, type DatasetValidationResult } from '@moco/contracts';
import { classCounts, DatasetError, readDataset, sniffFile, thumbnails } from '@moco/data';
import { childProcessLogger } from '@moco/service';

// Its output, libraries' included, as the API's JSON log entries.
const log = childProcessLogger('api', 'dataset-validation');

// The API is gone (even SIGKILLed): nobody wants this answer, and its spool file is swept.
process.on('disconnect', () => process.exit(1));

process.once('message', (message) => {
  void validate(DatasetValidationRequest.parse(message)).then(
    (result) => process.send!(result, undefined, undefined, () => process.exit(0)),
    (err: unknown) => {
      log.error({ err }, 'dataset validation failed');
      process.exit(1);
    },
  );
});

/**
 * Reads the whole dataset within the limits: decoding every image is the validation. While the images
 * are in memory, it also counts the classes and makes the thumbnails the dashboard shows.
 */
async function validate({ file, limits }: DatasetValidationRequest): Promise<DatasetValidationResult> {
  try {
    const { kind, gzip } = await sniffFile(file);
    // A raw idx file is read explicitly: auto-detection would look for a labels file in the
    // shared temp folder, where another upload's could be.
    const ds = await readDataset(kind === 'idx' ? { format: 'idx', images: file } : { format: 'archive', path: file }, limits);
    return {
      outcome: 'valid',
      stats: {
        kind,
        gzip,
        imageCount: ds.count,
        height: ds.height,
        width: ds.width,
        channels: ds.channels,
        classNames: ds.classNames ?? null,
        classCounts: classCounts(ds),
        labelled: ds.labels !== undefined,
      },
      samples: (await thumbnails(ds, MAX_DATASET_SAMPLES)).map((t) => ({ label: t.label, png: t.png.toString('base64') })),
    };
  } catch (err) {
    if (err instanceof DatasetError) return { outcome: 'invalid', code: err.code, file: err.file, message: err.message };
    throw err;
  }
}
