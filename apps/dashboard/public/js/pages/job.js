// #/jobs/<id>: one job, live. Charts and the event log start from the REST pages and then grow
// from the job's event stream (SSE) without reloading; the checkpoints table promotes, the
// cancel button stops the job.
import { api, followJob, isTerminal, listAll } from '../api.js';
import { metricChart } from '../chart.js';
import { errorBox, h, replace, statusBadge, table } from '../dom.js';
import { age, bytes, dateTime, number, percent, rate, time } from '../format.js';
import { downloadButton } from '../downloads.js';
import { datasetNamesOf, projectNames } from '../lookups.js';

const CHARTED = ['loss', 'lr', 'knn_accuracy'];
// Events after which the job row or its checkpoints have changed: re-read them.
const REFRESHING_EVENTS = new Set(['started', 'dataset_loaded', 'checkpoint_saved', 'epoch_completed', 'requeued', 'retrying']);
const REFRESH_DELAY_MS = 300;

const jobPath = (id, tail = '') => `/v1/jobs/${encodeURIComponent(id)}${tail}`;

/** Every point of the charted metrics, following next_from_step for long jobs. */
async function loadMetrics(id, signal) {
  const series = new Map(CHARTED.map((name) => [name, []]));
  let fromStep;
  do {
    const res = await api(jobPath(id, '/metrics'), { query: { name: CHARTED.join(','), from_step: fromStep }, signal });
    for (const s of res.data) series.get(s.name).push(...s.points);
    fromStep = res.has_more ? res.next_from_step : undefined;
  } while (fromStep !== undefined);
  return series;
}

function summaryItems(job, names) {
  const p = job.progress;
  const m = job.latest_metrics;
  return [
    ['Project', names.project],
    ['Dataset', names.dataset],
    ['Eval dataset', names.evalDataset ?? '—'],
    ['Progress', h('span', {}, h('progress', { max: 1, value: p.fraction }), ` ${(p.fraction * 100).toFixed(0)}%`)],
    ['Step', h('span', { id: 'job-step' }, `${p.step} / ${p.total_steps}`)],
    ['Epoch', `${p.epoch} / ${p.epochs}`],
    ['Loss', number(m.loss)],
    ['kNN accuracy', percent(m.knn_accuracy)],
    ['Images/s', rate(m.images_per_s)],
    ['Worker', job.worker_id ?? '—'],
    ['Attempts', String(job.attempts)],
    ['Heartbeat', job.heartbeat_at && !isTerminal(job.status) ? `${age(job.heartbeat_at)} ago` : '—'],
    ['Created', dateTime(job.created_at)],
    ['Started', dateTime(job.started_at)],
    ['Finished', dateTime(job.finished_at)],
    ['Metadata', Object.entries(job.metadata).map(([k, v]) => `${k}=${v}`).join(' ') || '—'],
  ];
}

const definitionList = (items, props = {}) => h('dl', props, items.map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, value))));

function eventItem(event) {
  return h(
    'li',
    { dataset: { type: event.type, id: String(event.id) } },
    h('time', { datetime: event.created_at, title: dateTime(event.created_at) }, time(event.created_at)),
    h('span', { class: `event-type type-${event.type}` }, event.type),
    h('span', { class: 'event-message' }, event.message),
  );
}

function promoteForm(checkpoint, onPromote) {
  const alias = h('input', { name: 'alias', value: 'production', required: true, pattern: '[a-z0-9][a-z0-9._\\-]{0,62}', size: 10, 'aria-label': 'alias' });
  const form = h('form', { class: 'inline promote' }, alias, h('button', { type: 'submit' }, 'Promote'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    onPromote(checkpoint, alias.value.trim());
  });
  return form;
}

function checkpointRows(checkpoints, aliasesOf, onPromote) {
  return [...checkpoints].reverse().map((c) =>
    h(
      'tr',
      { dataset: { checkpointId: c.id, step: String(c.step) } },
      h('td', { class: 'num' }, String(c.step)),
      h('td', { class: 'num' }, String(c.epoch)),
      h('td', {}, c.final ? 'final' : ''),
      h('td', { class: 'num' }, number(c.metrics.loss)),
      h('td', { class: 'num' }, percent(c.metrics.knn_accuracy)),
      h('td', { class: 'num' }, bytes(c.bytes)),
      h('td', { title: c.created_at }, `${age(c.created_at)} ago`),
      h('td', {}, (aliasesOf.get(c.id) ?? []).map((a) => h('span', { class: 'chip' }, a))),
      h('td', {}, promoteForm(c, onPromote)),
      h(
        'td',
        { class: 'downloads' },
        downloadButton('ONNX', c.downloads.onnx_head, 'the frozen encoder for onnxruntime (outputs backbone and head)'),
        downloadButton('PyTorch', c.downloads.pytorch, 'torch.load file in facebookresearch/moco layout (main_lincls.py --pretrained)'),
        downloadButton('State', c.downloads.mocotens, 'the whole resumable training state (MOCOTENS)'),
      ),
    ),
  );
}

export async function render(view, { params: [id], signal }) {
  const [initialJob, events, metrics, projects] = await Promise.all([
    api(jobPath(id), { signal }),
    listAll(jobPath(id, '/events'), { signal, pageSize: 1000, max: 10_000 }),
    loadMetrics(id, signal),
    projectNames(signal),
  ]);
  let job = initialJob;
  const xMax = () => job.progress.step;
  const datasets = await datasetNamesOf([job.dataset_id, job.eval_dataset_id], signal);
  const names = {
    project: projects.get(job.project_id) ?? job.project_id,
    dataset: h('a', { href: `#/datasets?project_id=${job.project_id}` }, datasets.get(job.dataset_id)),
    evalDataset: job.eval_dataset_id && datasets.get(job.eval_dataset_id),
  };

  const charts = {
    loss: metricChart({ name: 'loss', title: 'Loss', color: '#2563eb', xMax }),
    lr: metricChart({ name: 'lr', title: 'Learning rate', color: '#9333ea', xMax }),
    knn_accuracy: metricChart({ name: 'knn_accuracy', title: 'kNN accuracy', color: '#059669', percent: true, xMax }),
  };
  for (const [name, points] of metrics) charts[name].add(points);

  const badgeSlot = h('span', { id: 'job-status' });
  const streamState = h('span', { class: 'stream-state small muted', id: 'stream-state' });
  const message = h('p', { class: 'message', role: 'status' });
  const cancel = h('button', { type: 'button', class: 'danger', id: 'cancel-job' }, 'Cancel job');
  const summary = h('div', {});
  const checkpointSlot = h('div', { class: 'scroll' });
  const log = h('ol', { class: 'event-log', id: 'event-log', reversed: true });
  log.append(...events.map(eventItem).reverse());

  function showJob() {
    replace(badgeSlot, statusBadge(job.status));
    cancel.disabled = isTerminal(job.status) || job.status === 'cancelling';
    replace(summary, definitionList(summaryItems(job, names), { class: 'summary' }));
  }

  async function refreshCheckpoints() {
    const [checkpoints, models] = await Promise.all([
      listAll(jobPath(id, '/checkpoints'), { signal }),
      api('/v1/models', { query: { project_id: job.project_id }, signal }),
    ]);
    const aliasesOf = new Map(models.data.map((m) => [m.id, m.aliases]));
    replace(
      checkpointSlot,
      table(['Step', 'Epoch', '', 'Loss', 'kNN acc.', 'Size', 'Saved', 'Aliases', 'Promote', 'Download'], checkpointRows(checkpoints, aliasesOf, promote), {
        id: 'checkpoints-table',
        empty: 'No checkpoints yet.',
      }),
    );
  }

  async function promote(checkpoint, alias) {
    try {
      await api('/v1/models', { method: 'POST', json: { checkpoint_id: checkpoint.id, alias }, signal });
      replace(message, `Promoted the checkpoint at step ${checkpoint.step} as `, h('strong', {}, alias), '. ', h('a', { href: '#/models' }, 'See models'));
      await refreshCheckpoints();
    } catch (err) {
      replace(message, errorBox(err));
    }
  }

  let refreshTimer;
  /** Re-reads the job and its checkpoints once a burst of events has passed. */
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      try {
        job = await api(jobPath(id), { signal });
        showJob();
        await refreshCheckpoints();
      } catch (err) {
        if (!signal.aborted) replace(message, errorBox(err));
      }
    }, REFRESH_DELAY_MS);
  }

  cancel.addEventListener('click', async () => {
    if (!confirm(`Cancel job ${id}? A running job saves a checkpoint and stops.`)) return;
    cancel.disabled = true;
    try {
      // The badge says cancelling (or cancelled), the event log the rest.
      job = await api(jobPath(id, '/cancel'), { method: 'POST', signal });
      showJob();
    } catch (err) {
      replace(message, errorBox(err));
      showJob();
    }
  });

  showJob();
  await refreshCheckpoints();
  replace(
    view,
    h(
      'div',
      { class: 'page-head' },
      h('a', { href: '#/jobs', class: 'back' }, '← Jobs'),
      h('h1', {}, 'Job ', h('span', { class: 'mono' }, id)),
      badgeSlot,
      streamState,
      h('span', { class: 'spacer' }),
      cancel,
    ),
    message,
    summary,
    h('section', { class: 'charts' }, Object.values(charts).map((c) => c.element)),
    h(
      'div',
      { class: 'columns' },
      h('section', { class: 'card' }, h('h2', {}, 'Checkpoints'), checkpointSlot),
      h('section', { class: 'card' }, h('h2', {}, 'Events'), h('div', { class: 'scroll' }, log)),
    ),
    h(
      'details',
      { class: 'card' },
      h('summary', {}, 'Hyperparameters'),
      definitionList(Object.entries(job.hyperparameters).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]), { class: 'hyperparameters' }),
    ),
  );

  if (isTerminal(job.status)) return void (streamState.textContent = 'finished');
  followJob(id, {
    lastEventId: events.at(-1)?.id ?? 0,
    // One step back: epoch-end metrics (kNN) land on a step whose loss may already be charted.
    metricsAfterStep: Math.max(0, charts.loss.lastStep - 1),
    signal,
    onState(state) {
      streamState.textContent = { live: '● live', reconnecting: 'reconnecting…', ended: 'finished' }[state];
      streamState.classList.toggle('live', state === 'live');
    },
    onMetrics(series) {
      for (const s of series) {
        const last = s.points.at(-1);
        if (!last) continue;
        job.latest_metrics[s.name] = last[1];
        job.progress.step = Math.max(job.progress.step, last[0]);
      }
      job.progress.fraction = job.progress.total_steps ? job.progress.step / job.progress.total_steps : 0;
      // Every chart redraws, with points or without, to span the new step.
      for (const [name, chart] of Object.entries(charts)) chart.add(series.find((s) => s.name === name)?.points ?? []);
      showJob();
    },
    onEvent(event) {
      log.prepend(eventItem(event));
      if (typeof event.data.status === 'string') {
        job.status = event.data.status;
        showJob();
      }
      if (REFRESHING_EVENTS.has(event.type) || isTerminal(job.status)) refreshSoon();
    },
  }).catch((err) => replace(message, errorBox(err)));
}
