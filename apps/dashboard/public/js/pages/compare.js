// #/compare?ids=<job>,<job>,...: up to MAX_COMPARED runs side by side. Curves are drawn against
// epochs (steps / steps per epoch), so runs with different batch sizes or datasets line up; the
// table lists the settings that differ and each run's results.
import { api } from '../api.js';
import { metricChart, PALETTE } from '../chart.js';
import { h, replace, statusBadge, table } from '../dom.js';
import { number, percent } from '../format.js';
import { datasetNamesOf } from '../lookups.js';
import { loadMetrics } from '../metrics.js';

export const MAX_COMPARED = PALETTE.length;
const METRICS = ['loss', 'knn_accuracy', 'probe_accuracy', 'baseline_raw_knn_accuracy'];

/** The runs' label: a `name` metadata value if they carry one, else the id's tail (ids share their prefix). */
const runLabel = (job) => job.metadata.name ?? `…${job.id.slice(-8)}`;

/** The run's colour in the charts, beside its name (set through the CSSOM: the page's CSP refuses style attributes). */
function swatch(color) {
  const el = h('span', { class: 'swatch' });
  el.style.background = color;
  return el;
}

const show = (v) => (v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v));

/** Rows of settings, one per field: those whose values differ first (data-differs), then the rest. */
function settingRows(jobs, datasets) {
  const fields = [
    ['dataset', (j) => datasets.get(j.dataset_id) ?? j.dataset_id],
    ['eval dataset', (j) => (j.eval_dataset_id ? (datasets.get(j.eval_dataset_id) ?? j.eval_dataset_id) : '—')],
    ['seed', (j) => j.seed],
    ...Object.keys(jobs[0].hyperparameters).map((k) => [k, (j) => j.hyperparameters[k]]),
  ];
  const rows = fields.map(([field, get]) => {
    const values = jobs.map((j) => show(get(j)));
    return { field, values, differs: new Set(values).size > 1 };
  });
  return { differing: rows.filter((r) => r.differs), same: rows.filter((r) => !r.differs) };
}

function resultRows(jobs, metrics) {
  const best = (id, name) => {
    const values = metrics.get(id).get(name).map(([, v]) => v).filter((v) => v !== null);
    return values.length ? Math.max(...values) : undefined;
  };
  return [
    ['status', jobs.map((j) => statusBadge(j.status))],
    ['epochs done', jobs.map((j) => `${j.progress.epoch} / ${j.progress.epochs}`)],
    ['final loss', jobs.map((j) => number(j.latest_metrics.loss))],
    ['kNN (last)', jobs.map((j) => percent(j.latest_metrics.knn_accuracy))],
    ['kNN (best)', jobs.map((j) => percent(best(j.id, 'knn_accuracy')))],
    ['probe (best)', jobs.map((j) => percent(best(j.id, 'probe_accuracy')))],
    ['raw pixels kNN', jobs.map((j) => percent(metrics.get(j.id).get('baseline_raw_knn_accuracy').at(-1)?.[1]))],
    ['best checkpoint', jobs.map((j) => (j.best_checkpoint_id ? h('span', { class: 'mono small' }, j.best_checkpoint_id) : '—'))],
  ];
}

export async function render(view, { query, signal }) {
  const ids = [...new Set((query.get('ids') ?? '').split(',').filter(Boolean))];
  if (ids.length === 0) {
    return replace(view, h('h1', {}, 'Compare runs'), h('p', { class: 'muted' }, 'Tick up to ', String(MAX_COMPARED), ' jobs on the ', h('a', { href: '#/jobs' }, 'jobs page'), ' and press Compare.'));
  }
  if (ids.length > MAX_COMPARED) throw new Error(`At most ${MAX_COMPARED} runs can be compared at once (${ids.length} asked).`);
  const jobs = await Promise.all(ids.map((id) => api(`/v1/jobs/${encodeURIComponent(id)}`, { signal })));
  const [metricsList, datasets] = await Promise.all([
    Promise.all(ids.map((id) => loadMetrics(id, METRICS, signal))),
    datasetNamesOf(jobs.flatMap((j) => [j.dataset_id, j.eval_dataset_id]), signal),
  ]);
  const metrics = new Map(ids.map((id, i) => [id, metricsList[i]]));

  const series = jobs.map((j, i) => ({ key: j.id, label: runLabel(j), color: PALETTE[i] }));
  const xMax = () => Math.max(...jobs.map((j) => j.progress.epochs));
  const chart = (name, options) => metricChart({ name, series, xLabel: 'epoch', xMax, ...options });
  const charts = [
    chart('loss', { title: 'Loss', unit: 'InfoNCE loss' }),
    chart('knn_accuracy', { title: 'kNN accuracy', percent: true }),
    chart('probe_accuracy', { title: 'Linear probe accuracy', percent: true }),
  ];
  for (const j of jobs) {
    const stepsPerEpoch = j.progress.total_steps / j.progress.epochs;
    for (const c of charts) {
      const points = metrics.get(j.id).get(c.element.dataset.chart);
      c.add(points.map(([step, v]) => [step / stepsPerEpoch, v]), j.id);
    }
  }

  // A function: each table needs header cells of its own (a node lives in one place).
  const heads = () => ['', ...jobs.map((j, i) => h('a', { href: `#/jobs/${j.id}`, class: 'run', title: j.id }, swatch(PALETTE[i]), runLabel(j)))];
  const { differing, same } = settingRows(jobs, datasets);
  const rowOf = ({ field, values, differs }) => h('tr', { dataset: { field, ...(differs && { differs: '' }) } }, h('th', {}, field), values.map((v) => h('td', {}, v)));
  replace(
    view,
    h('div', { class: 'page-head' }, h('a', { href: '#/jobs', class: 'back' }, '← Jobs'), h('h1', {}, `Compare ${jobs.length} runs`)),
    h('section', { class: 'charts' }, charts.map((c) => c.element)),
    h(
      'div',
      { class: 'columns' },
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Settings that differ'),
        h('div', { class: 'scroll' }, table(heads(), differing.map(rowOf), { id: 'compare-settings', class: 'compare', empty: 'Every setting is the same.' })),
        h('details', {}, h('summary', {}, `${same.length} settings shared by all`), table(['', 'value'], same.map((r) => [r.field, r.values[0]]), { class: 'compare' })),
      ),
      h('section', { class: 'card' }, h('h2', {}, 'Results'), h('div', { class: 'scroll' }, table(heads(), resultRows(jobs, metrics).map(([label, cells]) => h('tr', { dataset: { row: label } }, h('th', {}, label), cells.map((c) => h('td', {}, c)))), { id: 'compare-results', class: 'compare' }))),
    ),
  );
}
