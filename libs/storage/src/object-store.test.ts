import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createObjectStore } from './create-store.js';
import { LocalFolderStore } from './local-store.js';
import { ObjectNotFoundError, validateKey, validatePrefix, type ObjectStore } from './object-store.js';
import { S3Store } from './s3-store.js';
import { startTestS3Server } from './test-s3-server.js';

/** A backend under test: shared resources plus a factory of fresh, empty, isolated stores. */
interface Backend {
  name: string;
  start(): Promise<{ fresh(): { store: ObjectStore; uri(key: string): string }; stop(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'LocalFolderStore',
    async start() {
      const base = await mkdtemp(path.join(tmpdir(), 'moco-store-contract-'));
      let n = 0;
      return {
        fresh() {
          const root = path.join(base, `store-${n++}`); // not created yet: stores create it on first use
          const store = createObjectStore({ kind: 'local', root });
          expect(store).toBeInstanceOf(LocalFolderStore);
          return { store, uri: (key) => pathToFileURL(path.join(root, key)).href };
        },
        stop: () => rm(base, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'S3Store (s3rver over HTTP)',
    async start() {
      const server = await startTestS3Server();
      let n = 0;
      return {
        fresh() {
          const prefix = `store-${n++}`;
          // Page size 2 makes every multi-key listing span several ListObjectsV2 pages.
          const store = createObjectStore({ kind: 's3', ...server, prefix, listPageSize: 2 });
          expect(store).toBeInstanceOf(S3Store);
          return { store, uri: (key) => `s3://${server.bucket}/${prefix}/${key}` };
        },
        stop: () => server.close(),
      };
    },
  },
];

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function chunked(bytes: Buffer, chunkSize: number): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < bytes.length; offset += chunkSize) yield bytes.subarray(offset, offset + chunkSize);
    })(),
  );
}

/** A body that delivers some bytes, then fails (a client disconnecting mid-upload). */
function failingStream(bytes: number, message: string): Readable {
  return Readable.from(
    (async function* () {
      yield Buffer.alloc(bytes, 7);
      throw new Error(message);
    })(),
  );
}

async function keysOf(listing: AsyncIterable<{ key: string }>): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of listing) keys.push(key);
  return keys;
}

describe.each(backends)('ObjectStore contract: $name', (backend) => {
  let env: Awaited<ReturnType<Backend['start']>>;
  let store: ObjectStore;
  let uri: (key: string) => string;

  beforeAll(async () => {
    env = await backend.start();
  });
  afterAll(() => env?.stop());
  beforeEach(() => {
    ({ store, uri } = env.fresh());
  });

  it('put/getBytes round-trips a Buffer and reports its size', async () => {
    const data = pseudoRandomBytes(1000, 1);
    expect(await store.put('datasets/d1/images.bin', data, { contentType: 'application/octet-stream' })).toEqual({
      key: 'datasets/d1/images.bin',
      bytes: 1000,
    });
    expect(sha256(await store.getBytes('datasets/d1/images.bin'))).toBe(sha256(data));
  });

  it('put stores exactly the bytes of a Uint8Array view', async () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    expect(await store.put('view', backing.subarray(2, 5))).toEqual({ key: 'view', bytes: 3 });
    expect([...(await store.getBytes('view'))]).toEqual([1, 2, 3]);
  });

  it('put consumes a stream of many chunks; get streams the bytes back', async () => {
    const data = pseudoRandomBytes(1024 * 1024 + 17, 2);
    expect(await store.put('ckpt/epoch-1.bin', chunked(data, 64 * 1024))).toEqual({
      key: 'ckpt/epoch-1.bin',
      bytes: data.length,
    });
    const stream = await store.get('ckpt/epoch-1.bin');
    expect(stream).toBeInstanceOf(Readable);
    expect(sha256(await buffer(stream))).toBe(sha256(data));
  });

  it('put replaces an existing object', async () => {
    await store.put('k', Buffer.from('first version'));
    await store.put('k', Buffer.from('v2'));
    expect((await store.getBytes('k')).toString()).toBe('v2');
    expect((await store.head('k'))?.bytes).toBe(2);
  });

  it('put accepts a matching contentLength and rejects a mismatching one without storing anything', async () => {
    await expect(store.put('exact', chunked(Buffer.alloc(10), 3), { contentLength: 10 })).resolves.toEqual({
      key: 'exact',
      bytes: 10,
    });
    await expect(store.put('short', chunked(Buffer.alloc(10), 3), { contentLength: 11 })).rejects.toThrow(
      /expected 11 bytes .*got 10/,
    );
    await expect(store.put('long', Buffer.alloc(12), { contentLength: 11 })).rejects.toThrow(/expected 11 bytes/);
    expect(await store.head('short')).toBeNull();
    expect(await store.head('long')).toBeNull();
  });

  it('a body stream that fails mid-way rejects put with its error and keeps the previous object', async () => {
    await store.put('model.bin', Buffer.from('good checkpoint'));
    await expect(store.put('model.bin', failingStream(1000, 'client went away'))).rejects.toThrow('client went away');
    expect((await store.getBytes('model.bin')).toString()).toBe('good checkpoint');

    await expect(store.put('fresh.bin', failingStream(1000, 'client went away'))).rejects.toThrow('client went away');
    expect(await store.head('fresh.bin')).toBeNull();
    expect(await keysOf(store.list(''))).toEqual(['model.bin']);
  });

  it('head reports size and modification time, and null for missing keys and "folders"', async () => {
    await store.put('dir/file.bin', Buffer.alloc(42));
    const info = await store.head('dir/file.bin');
    expect(info?.bytes).toBe(42);
    expect(info?.lastModified).toBeInstanceOf(Date);
    expect(await store.head('missing.bin')).toBeNull();
    expect(await store.head('dir')).toBeNull();
    expect(await store.head('dir/file.bin/below')).toBeNull();
  });

  it('get and getBytes throw ObjectNotFoundError carrying the key for missing objects', async () => {
    await store.put('dir/file.bin', Buffer.alloc(1));
    for (const key of ['nope.bin', 'dir', 'dir/other.bin']) {
      const err = await store.get(key).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ObjectNotFoundError);
      expect((err as ObjectNotFoundError).key).toBe(key);
      expect((err as Error).message).toBe(`Object not found: ${uri(key)}`);
      await expect(store.getBytes(key)).rejects.toBeInstanceOf(ObjectNotFoundError);
    }
  });

  it('list yields the objects under a string prefix, in key order, across pages', async () => {
    // (s3rver does not order "b-x" before "b/1" as S3 does; local-store.test.ts covers that case.)
    const keys = ['ds/b/1', 'ds/a/2', 'ds/a/1', 'ds/bx', 'ds2/z', 'other', 'ds/c'];
    for (const [i, key] of keys.entries()) await store.put(key, Buffer.alloc(i + 1));

    const listed: { key: string; bytes: number }[] = [];
    for await (const entry of store.list('ds/')) listed.push(entry);
    expect(listed).toEqual([
      { key: 'ds/a/1', bytes: 3 },
      { key: 'ds/a/2', bytes: 2 },
      { key: 'ds/b/1', bytes: 1 },
      { key: 'ds/bx', bytes: 4 },
      { key: 'ds/c', bytes: 7 },
    ]);
    expect(await keysOf(store.list('ds/b'))).toEqual(['ds/b/1', 'ds/bx']);
    expect(await keysOf(store.list('ds'))).toEqual(['ds/a/1', 'ds/a/2', 'ds/b/1', 'ds/bx', 'ds/c', 'ds2/z']);
    expect(await keysOf(store.list(''))).toEqual([...keys].sort());
    expect(await keysOf(store.list('none/'))).toEqual([]);
  });

  it('delete removes an object and succeeds when there is nothing to delete', async () => {
    await store.put('a/b', Buffer.from('x'));
    await store.delete('a/b');
    expect(await store.head('a/b')).toBeNull();
    await expect(store.delete('a/b')).resolves.toBeUndefined();
    await expect(store.delete('never/existed')).resolves.toBeUndefined();
    await store.put('a/c', Buffer.from('x'));
    await expect(store.delete('a')).resolves.toBeUndefined();
    expect(await store.head('a/c')).not.toBeNull();
  });

  it('deletePrefix deletes exactly the matching objects and returns how many', async () => {
    const doomed = ['job/1/ckpt-1', 'job/1/ckpt-2', 'job/1/ckpt-3', 'job/1/logs/a', 'job/1/logs/b'];
    for (const key of [...doomed, 'job/10', 'job/2/ckpt-1']) await store.put(key, Buffer.from(key));
    expect(await store.deletePrefix('job/1/')).toBe(5);
    expect(await keysOf(store.list(''))).toEqual(['job/10', 'job/2/ckpt-1']);
    expect(await store.deletePrefix('job/1/')).toBe(0);
    await expect(store.deletePrefix('')).rejects.toThrow(/non-empty prefix/);
  });

  it('rejects unsafe keys with a clear error before touching storage', async () => {
    const bad = ['', '/etc/passwd', '../outside', 'a/../../outside', 'a/./b', 'a\\b', 'a\0b', 'a//b', 'a/'];
    for (const key of bad) {
      const body = Buffer.from('x');
      await expect(store.put(key, body), JSON.stringify(key)).rejects.toThrow(/^Invalid object key/);
      await expect(store.get(key)).rejects.toThrow(/^Invalid object key/);
      await expect(store.getBytes(key)).rejects.toThrow(/^Invalid object key/);
      await expect(store.head(key)).rejects.toThrow(/^Invalid object key/);
      await expect(store.delete(key)).rejects.toThrow(/^Invalid object key/);
      expect(() => store.describe(key)).toThrow(/^Invalid object key/);
    }
    await expect(keysOf(store.list('../'))).rejects.toThrow(/must not contain "\.\." segments/);
    await expect(store.deletePrefix('a/../')).rejects.toThrow(/^Invalid object key/);
    expect(await keysOf(store.list(''))).toEqual([]);
  });

  it('describe gives the user-facing location of a key', () => {
    expect(store.describe('datasets/d1/images.bin')).toBe(uri('datasets/d1/images.bin'));
    expect(store.describe('x')).toMatch(/^(s3:\/\/|file:\/\/\/)/);
  });

  it('check succeeds on a usable store', async () => {
    await expect(store.check()).resolves.toBeUndefined();
  });
});

describe('validateKey / validatePrefix', () => {
  it('accept ordinary relative keys and explain rejections', () => {
    expect(validateKey('datasets/abc/part-0001.bin')).toBe('datasets/abc/part-0001.bin');
    expect(validateKey('.hidden/x..y')).toBe('.hidden/x..y');
    expect(() => validateKey('')).toThrow('Invalid object key "": must not be empty');
    expect(() => validateKey('a/../b')).toThrow('Invalid object key "a/../b": must not contain ".." segments');
    expect(() => validateKey('/a')).toThrow('must be relative');
    expect(() => validateKey('a\\b')).toThrow('must not contain "\\"');
    expect(() => validateKey('a\0b')).toThrow('Invalid object key "a\\u0000b": must not contain NUL');
    expect(validatePrefix('')).toBe('');
    expect(validatePrefix('datasets/')).toBe('datasets/');
    expect(validatePrefix('datasets/ab')).toBe('datasets/ab');
    expect(() => validatePrefix('datasets//')).toThrow('empty segments');
  });
});
