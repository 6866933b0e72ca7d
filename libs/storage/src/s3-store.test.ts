import {
  CreateBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseS3Uri, S3Store } from './s3-store.js';
import { startTestS3Server, type TestS3Server } from './test-s3-server.js';

const MiB = 1024 * 1024;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('parseS3Uri', () => {
  it('splits bucket and prefix, ignoring surrounding slashes', () => {
    expect(parseS3Uri('s3://my-bucket')).toEqual({ bucket: 'my-bucket', prefix: '' });
    expect(parseS3Uri('s3://my-bucket/')).toEqual({ bucket: 'my-bucket', prefix: '' });
    expect(parseS3Uri('s3://my.bucket-1/datasets/cifar10/')).toEqual({
      bucket: 'my.bucket-1',
      prefix: 'datasets/cifar10',
    });
  });

  it('rejects malformed URIs with a clear message', () => {
    expect(() => parseS3Uri('https://my-bucket/data')).toThrow(
      'Invalid S3 URI "https://my-bucket/data": expected s3://bucket or s3://bucket/prefix',
    );
    expect(() => parseS3Uri('s3://')).toThrow('Invalid S3 URI "s3://": invalid bucket name ""');
    expect(() => parseS3Uri('s3://My_Bucket/x')).toThrow(/invalid bucket name "My_Bucket"/);
    expect(() => parseS3Uri('s3://bucket/a/../b')).toThrow(/Invalid S3 URI .*must not contain "\.\." segments/);
  });
});

describe('S3Store configuration', () => {
  it('normalizes the key prefix', () => {
    const store = new S3Store({ bucket: 'b-1', prefix: '/runs/exp1/', region: 'us-east-1' });
    expect(store.prefix).toBe('runs/exp1');
    expect(store.describe('ckpt/1.bin')).toBe('s3://b-1/runs/exp1/ckpt/1.bin');
    expect(new S3Store({ bucket: 'b-1', region: 'us-east-1' }).describe('k')).toBe('s3://b-1/k');
  });

  it('rejects an invalid bucket and half-specified credentials', () => {
    expect(() => new S3Store({ bucket: 'Bad_Bucket', region: 'us-east-1' })).toThrow(/invalid bucket name/);
    expect(() => new S3Store({ bucket: 'b-1', region: 'us-east-1', accessKeyId: 'AKIA' })).toThrow(
      /both accessKeyId and secretAccessKey, or neither/,
    );
  });
});

describe('S3Store against s3rver', () => {
  let server: TestS3Server;
  let raw: S3Client;
  /** Names of the commands `raw` has sent, to observe what S3Store does on the wire. */
  let sent: string[];

  beforeAll(async () => {
    server = await startTestS3Server();
    raw = new S3Client({
      ...server,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    raw.middlewareStack.add(
      (next, context) => (args) => {
        sent.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize' },
    );
  });
  afterAll(() => server?.close());

  const count = (name: string) => sent.filter((c) => c === name).length;

  it('streams a 12 MiB body as a multipart upload, byte-exact', async () => {
    const store = new S3Store({ ...server, prefix: 'multipart' }, raw);
    const data = Buffer.alloc(12 * MiB);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    const body = Readable.from(
      (function* () {
        for (let offset = 0; offset < data.length; offset += 256 * 1024) yield data.subarray(offset, offset + 256 * 1024);
      })(),
    );
    sent = [];
    expect(await store.put('ckpt/big.bin', body)).toEqual({ key: 'ckpt/big.bin', bytes: 12 * MiB });
    expect(count('CreateMultipartUploadCommand')).toBe(1);
    expect(count('UploadPartCommand')).toBe(3); // 5 + 5 + 2 MiB
    expect(count('CompleteMultipartUploadCommand')).toBe(1);
    expect(count('PutObjectCommand')).toBe(0);

    expect(sha256(await store.getBytes('ckpt/big.bin'))).toBe(sha256(data));
    expect((await store.head('ckpt/big.bin'))?.bytes).toBe(12 * MiB);
  });

  it('a body that fails during a multipart upload rejects with its own error and stores nothing', async () => {
    const store = new S3Store({ ...server, prefix: 'multipart-fail' }, raw);
    const body = Readable.from(
      (async function* () {
        for (let i = 0; i < 7; i++) yield Buffer.alloc(MiB, i);
        throw new Error('client disconnected');
      })(),
    );
    sent = [];
    // s3rver does not implement AbortMultipartUpload; the body's error must still be the one reported.
    await expect(store.put('big.bin', body)).rejects.toThrow('client disconnected');
    expect(count('CreateMultipartUploadCommand')).toBe(1);
    expect(count('AbortMultipartUploadCommand')).toBe(1);
    expect(count('CompleteMultipartUploadCommand')).toBe(0);
    expect(await store.head('big.bin')).toBeNull();
  });

  it('lists and bulk-deletes page by page, listPageSize keys at a time', async () => {
    const store = new S3Store({ ...server, prefix: 'paged', listPageSize: 2 }, raw);
    for (let i = 0; i < 5; i++) await store.put(`run/${i}`, Buffer.from([i]));
    sent = [];
    const keys = [];
    for await (const { key } of store.list('run/')) keys.push(key);
    expect(keys).toEqual(['run/0', 'run/1', 'run/2', 'run/3', 'run/4']);
    expect(count('ListObjectsV2Command')).toBe(3);

    sent = [];
    expect(await store.deletePrefix('run/')).toBe(5);
    expect(count('DeleteObjectsCommand')).toBe(3);
    expect(count('DeleteObjectCommand')).toBe(0);
  });

  it('stores the content type', async () => {
    const store = new S3Store({ ...server, prefix: 'typed' }, raw);
    await store.put('meta.json', Buffer.from('{}'), { contentType: 'application/json' });
    const head = await raw.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'typed/meta.json' }));
    expect(head.ContentType).toBe('application/json');
  });

  it('keeps keys under its prefix, isolated from other prefixes', async () => {
    const a = new S3Store({ ...server, prefix: 'tenant-a' });
    const b = new S3Store({ ...server, prefix: 'tenant-b/' });
    await a.put('k', Buffer.from('from a'));
    await b.put('k', Buffer.from('from b!'));
    const listing = await raw.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'tenant-' }));
    expect(listing.Contents?.map((o) => o.Key)).toEqual(['tenant-a/k', 'tenant-b/k']);
    expect((await a.getBytes('k')).toString()).toBe('from a');
    const listed = [];
    for await (const entry of b.list('')) listed.push(entry);
    expect(listed).toEqual([{ key: 'k', bytes: 7 }]);
    expect(await a.deletePrefix('k')).toBe(1);
    expect((await b.getBytes('k')).toString()).toBe('from b!');
  });

  it('forBucket reads an external s3:// dataset with the same client settings', async () => {
    await raw.send(new CreateBucketCommand({ Bucket: 'external-data' }));
    const put = (Key: string, body: string) =>
      raw.send(new PutObjectCommand({ Bucket: 'external-data', Key, Body: body, ContentLength: body.length }));
    await put('datasets/cifar/', ''); // a console-made "folder"
    await put('datasets/cifar/train/0.png', 'png-0');
    await put('datasets/cifar/train/1.png', 'png-1');
    await put('datasets/other/x.png', 'other');

    const home = new S3Store({ ...server, prefix: 'home' });
    const { bucket, prefix } = parseS3Uri('s3://external-data/datasets/cifar/');
    const external = home.forBucket(bucket, prefix);
    await expect(external.check()).resolves.toBeUndefined();
    const listed = [];
    for await (const entry of external.list('')) listed.push(entry);
    expect(listed).toEqual([
      { key: 'train/0.png', bytes: 5 },
      { key: 'train/1.png', bytes: 5 },
    ]);
    expect((await external.getBytes('train/1.png')).toString()).toBe('png-1');
    expect(external.describe('train/0.png')).toBe('s3://external-data/datasets/cifar/train/0.png');
    expect(home.describe('x')).toBe(`s3://${server.bucket}/home/x`);
  });

  it('check rejects with a clear message when the bucket does not exist', async () => {
    const store = new S3Store({ ...server, bucket: 'no-such-bucket' });
    await expect(store.check()).rejects.toThrow(
      `S3 bucket "no-such-bucket" at ${server.endpoint} is not usable: the bucket does not exist`,
    );
  });
});

describe('startTestS3Server', () => {
  it('runs independent servers; close stops the server and deletes its data, and is idempotent', async () => {
    const [one, two] = await Promise.all([startTestS3Server(), startTestS3Server({ bucket: 'second' })]);
    expect(one.endpoint).not.toBe(two.endpoint);
    const store = new S3Store({ ...one });
    await store.put('x', Buffer.from('x'));
    await new S3Store({ ...two }).put('y', Buffer.from('y'));
    expect(existsSync(one.directory)).toBe(true);

    await one.close();
    await one.close();
    expect(existsSync(one.directory)).toBe(false);
    await expect(store.check()).rejects.toThrow(`S3 bucket "moco-test" at ${one.endpoint} is not usable: `);

    expect((await new S3Store({ ...two }).getBytes('y')).toString()).toBe('y');
    await two.close();
    expect(existsSync(two.directory)).toBe(false);
  });
});
