// Entry point: asks for the admin key, then routes #/jobs, #/jobs/<id>, #/compare, #/submit,
// #/datasets, #/datasets/<id>, #/models and #/queue to their page modules. Each page gets an AbortSignal that fires when the user leaves it,
// which stops its timers, requests and live streams.
import { api, ApiError, forgetKey, getKey, poll, setAuthFailureHandler, setKey } from './api.js';
import { errorBox, h, replace } from './dom.js';
import * as comparePage from './pages/compare.js';
import * as datasetPage from './pages/dataset.js';
import * as datasetsPage from './pages/datasets.js';
import * as jobPage from './pages/job.js';
import * as jobsPage from './pages/jobs.js';
import * as modelsPage from './pages/models.js';
import * as queuePage from './pages/queue.js';
import * as submitPage from './pages/submit.js';

const SUMMARY_REFRESH_MS = 10_000;
const view = document.getElementById('view');
const summary = document.getElementById('queue-summary');

const ROUTES = [
  { pattern: /^\/jobs\/([^/]+)$/, nav: 'jobs', page: jobPage },
  { pattern: /^\/jobs$/, nav: 'jobs', page: jobsPage },
  { pattern: /^\/compare$/, nav: 'jobs', page: comparePage },
  { pattern: /^\/submit$/, nav: 'jobs', page: submitPage },
  { pattern: /^\/datasets\/([^/]+)$/, nav: 'datasets', page: datasetPage },
  { pattern: /^\/datasets$/, nav: 'datasets', page: datasetsPage },
  { pattern: /^\/models$/, nav: 'models', page: modelsPage },
  { pattern: /^\/queue$/, nav: 'queue', page: queuePage },
];

let leave = new AbortController();

function signInForm(message) {
  const input = h('input', { type: 'password', name: 'key', autocomplete: 'off', required: true, placeholder: 'mk_…', 'aria-label': 'Admin API key' });
  const status = h('p', { class: 'error', role: 'alert' }, message);
  const form = h(
    'form',
    { class: 'sign-in card', id: 'sign-in' },
    h('h1', {}, 'Admin API key'),
    h('p', { class: 'muted' }, 'The dashboard reads and acts through the API with an admin key. It is kept for this browser tab only.'),
    input,
    h('button', { type: 'submit', class: 'primary' }, 'Open dashboard'),
    status,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    try {
      // Any admin route proves the key: 401 for an unknown key, 403 for a member key.
      await api('/v1/admin/projects', { key });
      setKey(key);
      route();
    } catch (err) {
      status.textContent = err.code === 'forbidden' ? 'This key is not an admin key.' : err.code === 'unauthorized' ? 'Unknown or revoked key.' : err.message;
    }
  });
  return form;
}

// The signed-in session: `abort` stops the queue summary's refresh; `update` refreshes it now.
let session = null;

function showSignIn(message) {
  leave.abort();
  session?.abort();
  session = null;
  document.body.classList.add('signed-out');
  summary.replaceChildren();
  replace(view, signInForm(message));
  view.querySelector('input').focus();
}

function startSession() {
  if (session) return session.update();
  const controller = new AbortController();
  const { signal } = controller;
  document.body.classList.remove('signed-out');
  const update = async () => {
    try {
      const q = await api('/v1/admin/queue', { signal });
      const workers = q.workers.length;
      summary.classList.toggle('warn', workers === 0);
      summary.textContent = `${workers} worker${workers === 1 ? '' : 's'} · ${q.waiting} waiting · ${q.active} active`;
    } catch (err) {
      if (signal.aborted) return;
      summary.classList.add('warn');
      summary.textContent = err.code === 'queue_unavailable' ? 'queue unavailable' : 'queue: no answer';
    }
  };
  session = { abort: () => controller.abort(), update };
  update();
  poll(SUMMARY_REFRESH_MS, signal, update);
}

async function route() {
  leave.abort();
  leave = new AbortController();
  if (!getKey()) return showSignIn('');
  startSession();
  const [path, queryString = ''] = location.hash.replace(/^#/, '').split('?');
  const match = ROUTES.map((r) => ({ ...r, params: r.pattern.exec(path) })).find((r) => r.params);
  if (!match) return void (location.hash = '#/jobs');
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === match.nav);
  replace(view, h('p', { class: 'muted' }, 'Loading…'));
  try {
    await match.page.render(view, { params: match.params.slice(1).map(decodeURIComponent), query: new URLSearchParams(queryString), signal: leave.signal });
  } catch (err) {
    // A refused key has already left for the sign-in form, which aborted the page.
    if (!leave.signal.aborted) replace(view, errorBox(err));
  }
}

setAuthFailureHandler((err) => {
  forgetKey();
  showSignIn(err.status === 403 ? 'This key is not an admin key.' : 'The key was refused: enter an admin key.');
});
document.getElementById('sign-out').addEventListener('click', () => {
  forgetKey();
  showSignIn('');
});
window.addEventListener('hashchange', route);
route();
