// #/jobs/<id>: one job, live. Charts and the event log start from the REST pages and then grow
// from the job's event stream (SSE) without reloading; the checkpoints table promotes, the
// cancel button stops the job.
import { api, followJob, isTerminal, listAll } from '../api.js';
import { metricChart } from '../chart.js';
import { loadMetrics } from '../metrics.js';
import { errorBox, h, replace, statusBadge, table } from '../dom.js';
import { age, bytes, dateTime, number, percent, rate, time } from '../format.js';
import { downloadButton } from '../downloads.js';
import { datasetNamesOf, projectNames } from '../lookups.js';

// Baselines (once per job, at step 0) are reference lines of the evaluation chart, not series.
const BASELINES = [
  ['baseline_raw_knn_accuracy', 'raw pixels kNN', '#6b7280'],
  ['baseline_raw_probe_accuracy', 'raw pixels probe', '#9ca3af'],
  ['baseline_random_knn_accuracy', 'random init kNN', '#b45309'],
  ['baseline_random_probe_accuracy', 'random init probe', '#d97706'],
];
const SERIES = ['loss', 'lr', 'pretext_accuracy', 'feature_std', 'images_per_s', 'knn_accuracy', 'probe_accuracy'];
const CHARTED = [...SERIES, ...BASELINES.map(([name]) => name)];
/** Epoch markers beyond this many would hide the curve: then every n-th epoch is marked. */
const MAX_EPOCH_MARKS = 40;
// Events after which the job row or its checkpoints have changed: re-read them.
// (evaluated: an evaluation may name a new best checkpoint; the event comes with the evaluation loop.)
const REFRESHING_EVENTS = new Set(['started', 'dataset_loaded', 'checkpoint_saved', 'epoch_completed', 'evaluated', 'requeued', 'retrying']);
const REFRESH_DELAY_MS = 300;

const jobPath = (id, tail = '') => `/v1/jobs/${encodeURIComponent(id)}${tail}`;

/** Every epoch's end as a step, thinned to at most MAX_EPOCH_MARKS. */
function epochMarks(job) {
  const { total_steps: total, epochs } = job.progress;
  const stepsPerEpoch = total / epochs;
  const every = Math.ceil(epochs / MAX_EPOCH_MARKS);
  const marks = [];
  for (let e = every; e < epochs; e += every) marks.push({ x: e * stepsPerEpoch, label: `e${e}` });
  return () => marks;
}

/**
 * The job's charts, each with the metric keys it draws. The evaluation chart carries the probe
 * beside kNN and the baselines as reference lines once the job has them (older jobs do not).
 */
function jobCharts(job, xMax, baselines) {
  const marks = epochMarks(job);
  const common = { xMax, epochMarks: marks };
  const healthyStd = 1 / Math.sqrt(job.hyperparameters.dim);
  const chart = (keys, options) => ({ keys, chart: metricChart({ ...common, ...options }) });
  return {
    loss: chart(['loss'], { name: 'loss', title: 'Loss', unit: 'InfoNCE loss', color: '#2563eb' }),
    lr: chart(['lr'], { name: 'lr', title: 'Learning rate', unit: 'lr', color: '#9333ea' }),
    pretext_accuracy: chart(['pretext_accuracy'], { name: 'pretext_accuracy', title: 'Pretext accuracy (positive ranked first)', color: '#0891b2', percent: true }),
    feature_std: chart(['feature_std'], {
      name: 'feature_std',
      title: 'Feature spread (std of normalised features; near 0 is collapse)',
      unit: 'std',
      color: '#db2777',
      references: () => [{ label: `healthy 1/√dim = ${number(healthyStd, 3)}`, value: healthyStd, color: '#059669' }],
    }),
    images_per_s: chart(['images_per_s'], { name: 'images_per_s', title: 'Training speed', unit: 'images/s', color: '#ca8a04' }),
    knn_accuracy: chart(['knn_accuracy', 'probe_accuracy'], {
      name: 'knn_accuracy',
      title: 'Evaluation accuracy',
      percent: true,
      series: [
        { key: 'knn_accuracy', label: 'kNN', color: '#059669' },
        { key: 'probe_accuracy', label: 'linear probe', color: '#2563eb' },
      ],
      references: () =>
        BASELINES.filter(([name]) => baselines.has(name)).map(([name, label, color]) => ({ label: `${label} ${percent(baselines.get(name))}`, value: baselines.get(name), color })),
    }),
  };
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
    ['Probe accuracy', percent(m.probe_accuracy)],
    ['Raw pixels kNN', percent(m.baseline_raw_knn_accuracy)],
    ['Best checkpoint', job.best_checkpoint_id ? h('span', { class: 'mono', id: 'best-checkpoint' }, job.best_checkpoint_id) : '—'],
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

/** Why the job failed, as the API recorded it: the first thing to read on a failed job's page. */
const failureBox = (error) =>
  h('div', { class: 'failure', role: 'alert' }, h('strong', {}, 'Failed: '), h('span', { class: 'mono' }, error.code), h('p', {}, error.message));

function checkpointRows(checkpoints, aliasesOf, onPromote, bestId) {
  return [...checkpoints].reverse().map((c) =>
    h(
      'tr',
      { dataset: { checkpointId: c.id, step: String(c.step) } },
      h('td', { class: 'num' }, String(c.step)),
      h('td', { class: 'num' }, String(c.epoch)),
      h('td', {}, c.final ? 'final' : '', c.id === bestId && h('span', { class: 'chip best' }, 'best')),
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
    loadMetrics(id, CHARTED, signal),
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

  const baselines = new Map();
  const charts = jobCharts(job, xMax, baselines);
  // The stream sends every metric: those no chart draws (epoch_loss) are only in the summary.
  const addPoints = (name, points) => {
    if (points.length === 0) return;
    if (name.startsWith('baseline_')) baselines.set(name, points.at(-1)[1]);
    else chartOf[name]?.chart.add(points, name);
  };
  const chartOf = Object.fromEntries(Object.values(charts).flatMap((chart) => chart.keys.map((key) => [key, chart])));
  for (const [name, points] of metrics) addPoints(name, points);

  const badgeSlot = h('span', { id: 'job-status' });
  const streamState = h('span', { class: 'stream-state small muted', id: 'stream-state' });
  const message = h('p', { class: 'message', role: 'status' });
  const cancel = h('button', { type: 'button', class: 'danger', id: 'cancel-job' }, 'Cancel job');
  const summary = h('div', {});
  const failure = h('div', { id: 'job-error' });
  const checkpointSlot = h('div', { class: 'scroll' });
  const log = h('ol', { class: 'event-log', id: 'event-log', reversed: true });
  log.append(...events.map(eventItem).reverse());

  function showJob() {
    replace(badgeSlot, statusBadge(job.status));
    cancel.disabled = isTerminal(job.status) || job.status === 'cancelling';
    replace(summary, definitionList(summaryItems(job, names), { class: 'summary' }));
    replace(failure, job.status === 'failed' && job.error && failureBox(job.error));
  }

  async function refreshCheckpoints() {
    const [checkpoints, models] = await Promise.all([
      listAll(jobPath(id, '/checkpoints'), { signal }),
      api('/v1/models', { query: { project_id: job.project_id }, signal }),
    ]);
    const aliasesOf = new Map(models.data.map((m) => [m.id, m.aliases]));
    replace(
      checkpointSlot,
      table(['Step', 'Epoch', '', 'Loss', 'kNN acc.', 'Size', 'Saved', 'Aliases', 'Promote', 'Download'], checkpointRows(checkpoints, aliasesOf, promote, job.best_checkpoint_id), {
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
    failure,
    summary,
    h('section', { class: 'charts' }, Object.values(charts).map((c) => c.chart.element)),
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
    metricsAfterStep: Math.max(0, charts.loss.chart.lastStep - 1),
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
      for (const s of series) addPoints(s.name, s.points);
      for (const { chart } of Object.values(charts)) chart.add([]);
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
