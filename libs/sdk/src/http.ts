import { setTimeout as sleep } from 'node:timers/promises';
import { MocoApiError, MocoConnectionError } from './errors.js';

export interface HttpOptions {
  baseUrl: string;
  apiKey: string;
  /** Per attempt; 0 disables. */
  timeoutMs: number;
  /** Extra attempts after a network error, a 5xx or a 429. */
  maxRetries: number;
  /** First backoff delay; doubles per retry, with jitter. */
  retryDelayMs: number;
}

type Body = NonNullable<RequestInit['body']>;

export interface RequestOptions {
  method?: string;
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  /** A body to send as is; a function makes a fresh one per attempt, so the request can be retried. */
  body?: Body | (() => Body);
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Only requests that are safe to repeat are retried (reads, idempotent writes). */
  retry?: boolean;
  timeoutMs?: number;
}

export class Http {
  constructor(private readonly opts: HttpOptions) {}

  url(path: string, query?: RequestOptions['query']): string {
    const url = new URL(path.replace(/^\//, ''), this.opts.baseUrl.endsWith('/') ? this.opts.baseUrl : `${this.opts.baseUrl}/`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url.toString();
  }

  async json<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.fetch(path, options);
    return (await res.json()) as T;
  }

  /** A successful response (2xx), after retries; error answers become MocoApiError. */
  async fetch(path: string, options: RequestOptions = {}): Promise<Response> {
    const method = options.method ?? 'GET';
    const retry = options.retry ?? (method === 'GET' || method === 'HEAD');
    const attempts = retry ? this.opts.maxRetries + 1 : 1;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await this.once(path, method, options);
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        if (attempt >= attempts) throw new MocoConnectionError(`${method} ${path}: ${(err as Error).message}`, { cause: err });
        await this.backoff(attempt, options.signal);
        continue;
      }
      if (res.ok) return res;
      // A 429 was refused before it did anything, so even a request not safe to repeat is retried,
      // if it can be sent again: JSON or no body, or a raw body the caller made retriable.
      const resendable = options.json !== undefined || options.body === undefined || retry;
      const retriable = res.status === 429 ? resendable && attempt <= this.opts.maxRetries : res.status >= 500 && attempt < attempts;
      if (retriable) {
        await res.body?.cancel();
        await this.backoff(attempt, options.signal, Number(res.headers.get('retry-after')) * 1000 || 0);
        continue;
      }
      throw await toApiError(res);
    }
  }

  private async once(path: string, method: string, options: RequestOptions): Promise<Response> {
    const timeoutMs = options.timeoutMs ?? this.opts.timeoutMs;
    const signals = [options.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const headers: Record<string, string> = { authorization: `Bearer ${this.opts.apiKey}`, ...options.headers };
    let body: Body | undefined;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      body = typeof options.body === 'function' ? options.body() : options.body;
    }
    return fetch(this.url(path, options.query), {
      method,
      headers,
      body,
      signal: signals.length ? AbortSignal.any(signals) : undefined,
      // Streamed bodies (uploads) need half-duplex in Node's fetch.
      ...(body && typeof body === 'object' && 'getReader' in body ? { duplex: 'half' } : {}),
    } as RequestInit);
  }

  private async backoff(attempt: number, signal?: AbortSignal, atLeastMs = 0): Promise<void> {
    const delay = Math.max(atLeastMs, this.opts.retryDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random()));
    await sleep(Math.min(delay, 30_000), undefined, { signal });
  }
}

async function toApiError(res: Response): Promise<MocoApiError> {
  const requestId = res.headers.get('x-request-id');
  const text = await res.text();
  try {
    const { error } = JSON.parse(text) as { error: { code: string; message: string; param?: string | null; details?: [] } };
    return new MocoApiError(res.status, error.code, error.message, error.param ?? null, error.details ?? [], requestId);
  } catch {
    return new MocoApiError(res.status, 'http_error', `HTTP ${res.status}: ${text.slice(0, 200)}`, null, [], requestId);
  }
}
