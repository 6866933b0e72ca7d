import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalFolderStore } from './local-store.js';

describe('LocalFolderStore', () => {
  let dir: string;
  let root: string;
  let store: LocalFolderStore;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'moco-local-store-'));
    root = path.join(dir, 'objects');
    store = new LocalFolderStore(root);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  async function keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const { key } of store.list(prefix)) out.push(key);
    return out;
  }

  it('creates its root folder (and parents) on first put', async () => {
    const nested = new LocalFolderStore(path.join(dir, 'a', 'b', 'c'));
    await nested.put('x/y.bin', Buffer.from('hi'));
    expect((await nested.getBytes('x/y.bin')).toString()).toBe('hi');
  });

  it('removes the temp files of puts that died mid-write once older than the cut-off, and nothing else', async () => {
    await store.put('a/b/kept.bin', Buffer.from('kept'));
    const dead = path.join(root, 'a/b/.moco-partial-dead');
    const live = path.join(root, 'a/.moco-partial-live');
    await writeFile(dead, 'half');
    await utimes(dead, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    await writeFile(live, 'half');
    expect(await store.removeStalePartials(new Date(Date.now() - 30_000))).toBe(1);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(await keys('')).toEqual(['a/b/kept.bin']);
  });

  it('lists in S3 key order, where "b-x" sorts before "b/1"', async () => {
    for (const key of ['b/1', 'b-x', 'b/0/deep', 'a', 'b0', 'c/d/e/f']) await store.put(key, Buffer.from(key));
    expect(await keys('')).toEqual(['a', 'b-x', 'b/0/deep', 'b/1', 'b0', 'c/d/e/f']);
  });

  it('a failed upload leaves neither a file under the key nor a temp file', async () => {
    const body = Readable.from(
      (async function* () {
        yield Buffer.alloc(64 * 1024, 1);
        yield Buffer.alloc(64 * 1024, 2);
        throw new Error('upload interrupted');
      })(),
    );
    await expect(store.put('ckpt/model.bin', body)).rejects.toThrow('upload interrupted');
    expect(await store.head('ckpt/model.bin')).toBeNull();
    expect(await readdir(path.join(root, 'ckpt'))).toEqual([]);
  });

  it('an upload in progress is invisible until it completes', async () => {
    const body = new PassThrough();
    const done = store.put('data/set.bin', body);
    body.write(Buffer.alloc(1000, 3));
    // Wait until the bytes are on disk in the temp file.
    const folder = path.join(root, 'data');
    for (let i = 0; i < 200 && !(existsSync(folder) && (await readdir(folder)).length > 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await readdir(folder)).toHaveLength(1);
    expect(await store.head('data/set.bin')).toBeNull();
    expect(await keys('')).toEqual([]);

    body.end(Buffer.alloc(500, 4));
    expect(await done).toEqual({ key: 'data/set.bin', bytes: 1500 });
    expect(await readdir(folder)).toEqual(['set.bin']);
    expect(await keys('')).toEqual(['data/set.bin']);
  });

  it('never writes outside its root, and reserves the temp-file names', async () => {
    await expect(store.put('../escaped.txt', Buffer.from('x'))).rejects.toThrow(/Invalid object key/);
    await expect(store.put('a/../../escaped.txt', Buffer.from('x'))).rejects.toThrow(/Invalid object key/);
    expect(existsSync(path.join(dir, 'escaped.txt'))).toBe(false);
    await expect(store.put('a/.moco-partial-123', Buffer.from('x'))).rejects.toThrow(/reserved/);
  });

  it('describe returns a percent-encoded file:// URL', () => {
    expect(store.describe('my data/#1.bin')).toBe(`file://${root}/my%20data/%231.bin`);
  });

  it('check creates a missing root folder', async () => {
    await store.check();
    expect(existsSync(root)).toBe(true);
  });

  it('check rejects, naming the folder, when the root is a file', async () => {
    await writeFile(root, 'not a folder');
    await expect(store.check()).rejects.toThrow(`Local object store folder ${root} is not usable`);
  });
});
