import { open, stat } from 'node:fs/promises';
import { DatasetError, errorMessage } from './dataset-errors.js';

/** A file of a folder or archive tree, read only when needed. */
export interface TreeFile {
  /** '/'-separated path inside the tree: decides classes and formats. */
  path: string;
  /** What error messages call the file: its path on disk, or `archive:entry`. */
  name: string;
  size(): Promise<number>;
  read(): Promise<Uint8Array>;
}

export function memoryFile(path: string, name: string, data: Uint8Array): TreeFile {
  return { path, name, size: async () => data.length, read: async () => data };
}

function ioError(err: unknown, file: string): DatasetError {
  if (err instanceof DatasetError) return err;
  const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
  return new DatasetError(missing ? 'not_found' : 'unreadable_file', file, errorMessage(err), { cause: err });
}

export function diskFile(file: string, path: string, maxBytes: number): TreeFile {
  return {
    path,
    name: file,
    size: async () => {
      try {
        return (await stat(file)).size;
      } catch (err) {
        throw ioError(err, file);
      }
    },
    read: async () => {
      try {
        const handle = await open(file);
        try {
          const { size } = await handle.stat();
          if (size > maxBytes) throw new DatasetError('too_large', file, `file has ${size} bytes, more than the limit of ${maxBytes}`);
          return await handle.readFile();
        } finally {
          await handle.close();
        }
      } catch (err) {
        throw ioError(err, file);
      }
    },
  };
}

const JUNK_NAMES = new Set(['__MACOSX', 'Thumbs.db', 'desktop.ini']);

/** Dotfiles (.DS_Store, ._resource forks, .git), macOS and Windows droppings: never part of a dataset. */
export function isJunkName(name: string): boolean {
  return name.startsWith('.') || JUNK_NAMES.has(name);
}

export function isJunkPath(path: string): boolean {
  return path.split('/').some(isJunkName);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Code-unit order, as Python's sorted() (and so torchvision) orders names; localeCompare would not. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
