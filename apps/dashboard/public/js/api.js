// The admin API client of the pages: every call carries the admin key as a bearer token.
import { time } from './format.js';
import { sseParser } from './sse.js';

const KEY_STORAGE = 'moco-admin-key';
const TERMINAL = ['succeeded', 'failed', 'cancelled'];
const RECONNECT_MS = 1000;

export const isTerminal = (status) => TERMINAL.includes(status);

export const getKey = () => sessionStorage.getItem(KEY_STORAGE);
export const setKey = (key) => sessionStorage.setItem(KEY_STORAGE, key);
export const forgetKey = () => sessionStorage.removeItem(KEY_STORAGE);

/**
 * An error answer of the API: `code` is its error.code (unauthorized, forbidden, not_found, ...),
 * `details` its error.details ([{param, message}] for invalid parameters), when it has them.
 */
export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** The ApiError of error body `body` answered with HTTP `status`; one problem comes as error.param, several as details. */
function errorOf(status, body) {
  const e = body?.error;
  const details = e?.details ?? (e?.param ? [{ param: e.param, message: e.message }] : []);
  return new ApiError(status, e?.code ?? 'http_error', e?.message ?? `HTTP ${status}`, details);
}

let onAuthFailure = () => {};
/** Called with the ApiError when the key is refused (401, or 403 for a member key). */
export function setAuthFailureHandler(handler) {
  onAuthFailure = handler;
}

/** A successful Response of `path` (with `query`, a JSON body, extra headers), or a thrown ApiError. */
export async function request(path, { method = 'GET', query, json, headers = {}, signal, key = getKey() } = {}) {
  const url = new URL(path, location.origin); // the API serves these pages, so it is this origin
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  const res = await fetch(url, {
    method,
    signal,
    headers: {
      authorization: `Bearer ${key}`,
      ...(json !== undefined && { 'content-type': 'application/json' }),
      ...headers,
    },
    body: json !== undefined ? JSON.stringify(json) : undefined,
  });
  if (res.ok) return res;
  const body = await res.json().catch(() => null);
  const error = errorOf(res.status, body);
  // The stored key was refused (revoked meanwhile); a key being tried at sign-in is the form's business.
  if ((res.status === 401 || res.status === 403) && key === getKey()) onAuthFailure(error);
  throw error;
}

export const api = async (path, options) => (await request(path, options)).json();

/** A random Idempotency-Key (crypto.randomUUID needs a secure context; the page may be served over plain HTTP). */
export const idempotencyKey = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

/**
 * Saves an API file (a checkpoint export, a dataset) under the name the API gives it. A plain link
 * cannot carry the key, so the file is fetched with it and handed to the browser as a blob.
 */
export async function download(path, { signal } = {}) {
  const res = await request(path, { signal });
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'download';
  const url = URL.createObjectURL(await res.blob());
  const link = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has taken the file by then; the blob's memory goes back.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Every item of a list endpoint, following next_cursor (at most about `max` items). */
export async function listAll(path, { query, signal, max = 1000, pageSize = 100 } = {}) {
  const items = [];
  let after;
  do {
    const page = await api(path, { query: { ...query, limit: pageSize, after }, signal });
    items.push(...page.data);
    after = page.has_more ? page.next_cursor : undefined;
  } while (after && items.length < max);
  return items;
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/** Runs `fn` `ms` after the previous run ended (the first after `ms`), until `signal` aborts. */
export async function poll(ms, signal, fn) {
  for (;;) {
    await sleep(ms, signal);
    if (signal.aborted) return;
    await fn();
  }
}

/**
 * Runs `refresh` now (its error is the caller's: the page cannot show) and then every `ms` until
 * `signal` aborts; `status` says when the data was fetched, or that a later refresh failed.
 */
export async function autoRefresh(refresh, { ms, signal, status }) {
  const run = async () => {
    await refresh();
    status.textContent = `updated ${time(new Date())}`;
  };
  await run();
  poll(ms, signal, () =>
    run().catch((err) => {
      if (!signal.aborted) status.textContent = `refresh failed: ${err.message}`;
    }),
  );
}

/**
 * Follows a job's live stream (SSE over fetch) until its terminal event or `signal` aborts:
 * onEvent(JobEvent) for each event after `lastEventId`, onMetrics([{name, points}]) for metric
 * points after step `metricsAfterStep`, onState('live' | 'reconnecting' | 'ended'). A dropped
 * connection is resumed with Last-Event-ID, so no event is missed or repeated.
 */
export async function followJob(jobId, { lastEventId, metricsAfterStep, onEvent, onMetrics, onState, signal }) {
  let ended = false;
  const feed = sseParser((message) => {
    const data = JSON.parse(message.data);
    if (message.event === 'metrics') {
      // A reconnect asks again from the newest step seen (epoch metrics land on a step already sent).
      for (const s of data.data) metricsAfterStep = Math.max(metricsAfterStep, (s.points.at(-1)?.[0] ?? 1) - 1);
      onMetrics(data.data);
      return;
    }
    lastEventId = data.id;
    onEvent(data);
    if (isTerminal(data.data.status ?? data.type)) ended = true;
  });
  while (!ended && !signal.aborted) {
    try {
      const res = await request(`/v1/jobs/${encodeURIComponent(jobId)}/events`, {
        query: { metrics_after_step: metricsAfterStep },
        headers: { accept: 'text/event-stream', 'last-event-id': String(lastEventId) },
        signal,
      });
      onState('live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        feed(value);
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status < 500) throw err; // unknown job, refused key: retrying will not help
    }
    if (ended) break;
    onState('reconnecting');
    await sleep(RECONNECT_MS, signal);
  }
  if (ended) onState('ended');
}

/**
 * Uploads `file` as a new dataset (POST /v1/datasets, the raw file as the body). XMLHttpRequest, not
 * fetch: the browser streams the file from disk and reports the bytes sent, which fetch cannot.
 * onProgress(sent, total) while the body goes out; onSent() once it is all out and the API validates it.
 */
export function uploadDataset(file, { name, onProgress, onSent, signal }) {
  const url = new URL('/v1/datasets', location.origin);
  // The stored object's name: the file's, reduced to the characters the API accepts.
  const filename = file.name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+/, '').slice(0, 200);
  if (filename) url.searchParams.set('filename', filename);
  if (name) url.searchParams.set('name', name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('authorization', `Bearer ${getKey()}`);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.responseType = 'json';
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.upload.addEventListener('load', () => onSent());
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.response);
      reject(errorOf(xhr.status, xhr.response));
    });
    xhr.addEventListener('error', () => reject(new Error('the upload was cut off (network error)')));
    xhr.addEventListener('abort', () => reject(new Error('upload cancelled')));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}
