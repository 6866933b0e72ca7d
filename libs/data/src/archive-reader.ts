import { createReadStream } from 'node:fs';
import { pipeline, Transform } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';
import { DatasetError, errorMessage } from './dataset-errors.js';
import { isJunkPath, memoryFile, type TreeFile } from './file-tree.js';

export interface ArchiveLimits {
  maxBytes: number;
  maxFiles: number;
}

/**
 * The normalised path of an archive entry, or an error for one that would land outside the tree (absolute, drive
 * letter, `..`): extracting such an entry anywhere would be a path traversal.
 */
export function safeEntryPath(rawName: string, archive: string): string {
  const name = rawName.replaceAll('\\', '/');
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name) || parts.includes('..')) {
    throw new DatasetError('path_traversal', `${archive}:${rawName}`, 'archive entry points outside the archive (absolute path or ..)');
  }
  return parts.join('/');
}

function unsafeEntry(archive: string, name: string, kind: string): DatasetError {
  return new DatasetError('unsafe_entry', `${archive}:${name}`, `archive entry is a ${kind}; only regular files are accepted`);
}

function badArchive(err: unknown, archive: string): DatasetError {
  if (err instanceof DatasetError) return err;
  return new DatasetError('bad_archive', archive, `cannot read archive: ${errorMessage(err)}`, { cause: err });
}

/** Drops a single top-level folder that wraps the whole tree (`dataset/cats/1.png` -> `cats/1.png`). */
function unwrapSingleFolder(files: TreeFile[]): TreeFile[] {
  const top = files[0]?.path.split('/')[0];
  const wrapped = files.length > 0 && files.every((f) => f.path.startsWith(`${top}/`));
  return wrapped ? files.map((f) => ({ ...f, path: f.path.slice(top!.length + 1) })) : files;
}

/** Links could point anywhere on extraction; devices and fifos are never image data. */
const UNSAFE_TAR_TYPES = new Set(['symlink', 'link', 'character-device', 'block-device', 'fifo']);

/** Reads a tar stream (gzip or not) entry by entry; the byte budget counts the unpacked stream as it flows. */
async function readTar(archive: string, gzip: boolean, limits: ArchiveLimits): Promise<TreeFile[]> {
  let bytes = 0;
  const budget = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > limits.maxBytes) {
        callback(new DatasetError('too_large', archive, `unpacks to more than the limit of ${limits.maxBytes} bytes`));
      } else {
        callback(null, chunk);
      }
    },
  });
  const extract = tar.extract();
  const failed = (err: Error | null) => {
    if (err) extract.destroy(err);
  };
  const source = createReadStream(archive);
  (gzip ? pipeline(source, createGunzip(), budget, failed) : pipeline(source, budget, failed)).pipe(extract);

  const files: TreeFile[] = [];
  let entries = 0;
  try {
    for await (const entry of extract) {
      const { name, type } = entry.header;
      entries += 1;
      if (entries > limits.maxFiles) throw new DatasetError('too_many_files', archive, `more than ${limits.maxFiles} entries`);
      const path = safeEntryPath(name, archive);
      if (type && UNSAFE_TAR_TYPES.has(type)) throw unsafeEntry(archive, name, type);
      if ((type === 'file' || type === 'contiguous-file') && path !== '' && !isJunkPath(path)) {
        files.push(memoryFile(path, `${archive}:${path}`, await buffer(entry)));
      } else {
        entry.resume();
      }
    }
  } catch (err) {
    throw badArchive(err, archive);
  } finally {
    budget.destroy();
  }
  return files;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** Reads a zip with yauzl, which checks each entry's inflated size against the size the central directory declares. */
async function readZip(archive: string, limits: ArchiveLimits): Promise<TreeFile[]> {
  const files: TreeFile[] = [];
  let zip: yauzl.ZipFile | undefined;
  try {
    // Names are decoded here, not by yauzl, so that a bad one gets the same path_traversal error as in a tar.
    zip = await yauzl.openPromise(archive, { decodeStrings: false, validateEntrySizes: true });
    if (zip.entryCount > limits.maxFiles) throw new DatasetError('too_many_files', archive, `more than ${limits.maxFiles} entries`);
    let bytes = 0;
    for await (const entry of zip.eachEntry()) {
      const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
      const path = safeEntryPath(name, archive);
      // Zips made on Unix keep the file mode in the high 16 bits of the external attributes.
      if (((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK) throw unsafeEntry(archive, name, 'symlink');
      if (name.endsWith('/') || path === '' || isJunkPath(path)) continue;
      bytes += entry.uncompressedSize;
      if (bytes > limits.maxBytes) throw new DatasetError('too_large', archive, `unpacks to more than the limit of ${limits.maxBytes} bytes`);
      files.push(memoryFile(path, `${archive}:${path}`, await buffer(await zip.openReadStreamPromise(entry))));
    }
  } catch (err) {
    throw badArchive(err, archive);
  } finally {
    zip?.close();
  }
  return files;
}

/** Reads every regular file of a tar, tar.gz or zip archive into memory, within the limits. */
export async function readArchive(archive: string, format: 'tar' | 'zip', gzip: boolean, limits: ArchiveLimits): Promise<TreeFile[]> {
  const files = format === 'zip' ? await readZip(archive, limits) : await readTar(archive, gzip, limits);
  return unwrapSingleFolder(files);
}
