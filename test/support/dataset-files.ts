import { createGzip } from 'node:zlib';
import { idxFile } from '@moco/data';

/** A gzipped idx image file of `count` black `side`x`side` images, made as a stream: a bomb that is never whole in memory. */
export async function gzippedZeroIdx(count: number, side: number): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gzip.on('data', (chunk: Buffer) => out.push(chunk));
  const done = new Promise((resolve, reject) => gzip.on('end', resolve).on('error', reject));
  const write = (data: Uint8Array) => new Promise<void>((resolve) => (gzip.write(data) ? resolve() : gzip.once('drain', resolve)));
  await write(idxFile([count, side, side], new Uint8Array(0)));
  const zeros = new Uint8Array(16 * 1024 ** 2);
  for (let left = count * side * side; left > 0; left -= zeros.length) await write(zeros.subarray(0, Math.min(left, zeros.length)));
  gzip.end();
  await done;
  return Buffer.concat(out);
}

/** POSTs a dataset file to a running API; the JSON answer and its status. */
export async function postDataset(url: string, key: string, body: Uint8Array): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/v1/datasets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
    body,
  });
  return { status: res.status, json: await res.json() };
}
