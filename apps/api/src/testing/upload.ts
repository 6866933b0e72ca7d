import type { TestApp } from './test-app.js';

/** POSTs bytes to /v1/datasets over a real socket (uploads are streamed, which inject does not show). */
export async function upload(
  t: TestApp,
  key: string,
  body: Uint8Array | ReadableStream<Uint8Array>,
  query: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${t.url}/v1/datasets?${new URLSearchParams(query)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream', ...headers },
    body,
    ...(body instanceof ReadableStream && { duplex: 'half' }),
  } as RequestInit);
  return { status: res.status, json: await res.json(), headers: res.headers };
}
