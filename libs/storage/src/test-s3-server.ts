import crypto, { type BinaryLike, type CipherKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TransformOptions } from 'node:stream';

/** Connection settings for a throwaway S3 server; spread into `S3StoreOptions`. */
export interface TestS3Server {
  endpoint: string;
  bucket: string;
  region: 'us-east-1';
  accessKeyId: 'S3RVER';
  secretAccessKey: 'S3RVER';
  forcePathStyle: true;
  /** Where s3rver keeps the objects; removed by `close`. */
  directory: string;
  /** Stops the server and deletes its data; safe to call twice. */
  close(): Promise<void>;
}

// The part of s3rver 3.x (untyped CommonJS) that is used here.
interface S3rver {
  httpServer: Server;
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rver;

/**
 * Starts s3rver (an in-process fake S3 over real HTTP) on 127.0.0.1 at a random port, with an
 * empty bucket, for tests. s3rver is a devDependency, so it is only loaded when this is called.
 */
export async function startTestS3Server(options: { bucket?: string } = {}): Promise<TestS3Server> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
  enableSingleDes();
  const bucket = options.bucket ?? 'moco-test';
  const directory = await mkdtemp(path.join(tmpdir(), 'moco-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
  });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    forcePathStyle: true,
    directory,
    close() {
      closed ??= (async () => {
        const stopped = server.close();
        // Clients keep connections alive; drop them so close() does not wait for their idle timeout.
        server.httpServer.closeAllConnections();
        await stopped;
        await rm(directory, { recursive: true, force: true });
      })();
      return closed;
    },
  };
}

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 (Node >= 17)
 * no longer offers, so every truncated listing fails with InternalError. Triple DES with three
 * equal keys computes the same cipher, so route 'des' there. Only calls that would otherwise
 * throw "unsupported" are affected.
 */
function enableSingleDes(): void {
  const { createCipheriv, createDecipheriv } = crypto;
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return; // this OpenSSL still has single DES
  } catch {
    // patch below
  }
  const tripled = (key: CipherKey) => Buffer.concat([key as Buffer, key as Buffer, key as Buffer]);
  crypto.createCipheriv = ((algorithm: string, key: CipherKey, iv: BinaryLike | null, opts?: TransformOptions) =>
    algorithm === 'des'
      ? createCipheriv('des-ede3-cbc', tripled(key), iv)
      : createCipheriv(algorithm, key, iv, opts)) as typeof createCipheriv;
  crypto.createDecipheriv = ((algorithm: string, key: CipherKey, iv: BinaryLike | null, opts?: TransformOptions) =>
    algorithm === 'des'
      ? createDecipheriv('des-ede3-cbc', tripled(key), iv)
      : createDecipheriv(algorithm, key, iv, opts)) as typeof createDecipheriv;
}
