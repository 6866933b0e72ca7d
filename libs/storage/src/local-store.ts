import { randomUUID } from 'node:crypto';
import { constants, createWriteStream, type Dirent } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
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

// In-flight uploads live next to their target (same filesystem, so the final rename is atomic)
// under this reserved name, which `list` hides and keys may not use.
const TEMP_PREFIX = '.moco-partial-';

/** Stores each object as a file `<root>/<key>`; the embedded default. */
export class LocalFolderStore implements ObjectStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    const file = this.pathFor(key);
    const temp = path.join(path.dirname(file), TEMP_PREFIX + randomUUID());
    const counter = countBytes(body, opts.contentLength);
    try {
      await mkdir(path.dirname(file), { recursive: true });
      // `flush` fsyncs before close, so the rename cannot publish a file whose data is not yet on disk.
      await pipeline(counter, createWriteStream(temp, { flags: 'wx', flush: true }));
      await rename(temp, file);
    } catch (err) {
      counter.destroy();
      await rm(temp, { force: true });
      throw err;
    }
    return { key, bytes: counter.bytes };
  }

  async get(key: string): Promise<Readable> {
    const file = this.pathFor(key);
    const handle = await open(file, 'r').catch((err: unknown) => {
      throw isMissing(err) ? new ObjectNotFoundError(key, this.describe(key)) : err;
    });
    // A directory (key "a" while "a/b" exists) opens fine on Linux but is not an object.
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new ObjectNotFoundError(key, this.describe(key));
    }
    return handle.createReadStream();
  }

  async getBytes(key: string): Promise<Buffer> {
    return buffer(await this.get(key));
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const info = await stat(this.pathFor(key));
      return info.isFile() ? { bytes: info.size, lastModified: info.mtime } : null;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.pathFor(key));
    } catch (err) {
      if (!isMissing(err) && (err as NodeJS.ErrnoException).code !== 'EISDIR') throw err;
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    if (prefix === '') throw new Error('deletePrefix requires a non-empty prefix');
    let deleted = 0;
    for await (const { key } of this.list(prefix)) {
      await this.delete(key);
      deleted++;
    }
    return deleted;
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    validatePrefix(prefix);
    const cut = prefix.lastIndexOf('/') + 1;
    yield* this.walk(prefix.slice(0, cut), prefix.slice(cut));
  }

  /** Yields the objects under folder `dirKey` (`''` or ending in `/`) whose names start with `namePrefix`. */
  private async *walk(dirKey: string, namePrefix: string): AsyncGenerator<ListedObject> {
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(this.root, dirKey), { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    // Sorting folders as "name/" makes the depth-first walk yield keys in global key order.
    const sorted = entries
      .filter((e) => e.name.startsWith(namePrefix) && !e.name.startsWith(TEMP_PREFIX))
      .map((e) => ({ entry: e, sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : 1));
    for (const { entry } of sorted) {
      const key = dirKey + entry.name;
      if (entry.isDirectory()) {
        yield* this.walk(`${key}/`, '');
      } else if (entry.isFile()) {
        const info = await this.head(key); // null if deleted since readdir
        if (info) yield { key, bytes: info.bytes };
      }
    }
  }

  /**
   * Removes the temp files of puts whose process died mid-write (a crash leaves them, and `list`
   * never shows them) last written before `olderThan`: a live put writes its file as it goes.
   */
  async removeStalePartials(olderThan: Date): Promise<number> {
    let removed = 0;
    const entries = await readdir(this.root, { withFileTypes: true, recursive: true }).catch((err: unknown) => {
      if (isMissing(err)) return [];
      throw err;
    });
    for (const entry of entries) {
      if (!entry.isFile() || !entry.name.startsWith(TEMP_PREFIX)) continue;
      const file = path.join(entry.parentPath, entry.name);
      const info = await stat(file).catch(() => null);
      if (info && info.mtime < olderThan) {
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async check(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      if (!(await stat(this.root)).isDirectory()) throw new Error('not a directory');
      await access(this.root, constants.R_OK | constants.W_OK);
    } catch (err) {
      throw new Error(`Local object store folder ${this.root} is not usable: ${(err as Error).message}`, { cause: err });
    }
  }

  describe(key: string): string {
    return pathToFileURL(this.pathFor(key)).href;
  }

  private pathFor(key: string): string {
    validateKey(key);
    if (key.split('/').some((segment) => segment.startsWith(TEMP_PREFIX))) {
      throw new Error(`Invalid object key ${JSON.stringify(key)}: "${TEMP_PREFIX}*" names are reserved`);
    }
    return path.join(this.root, key);
  }
}

/** ENOENT, or ENOTDIR when a parent of the path is a file (key "a/b" while "a" is an object). */
function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
