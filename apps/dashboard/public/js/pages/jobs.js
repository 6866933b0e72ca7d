// #/jobs: every project's jobs, newest first, refreshed every few seconds; filters live in the address.
import { api, autoRefresh } from '../api.js';
import { h, replace, statusBadge, table } from '../dom.js';
import { age, number, percent, rate } from '../format.js';
import { projectOptions, setQuery } from '../list-page.js';
import { datasetNamesOf, projectNames } from '../lookups.js';
import { MAX_COMPARED } from './compare.js';

const REFRESH_MS = 5000;
const PAGE = 50;
const STATUS_CHOICES = [
  ['', 'Any status'],
  ['queued,running,cancelling', 'Live'],
  ...['queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'].map((s) => [s, s]),
];

/** `?metadata=team=vision` -> the API's `metadata.team=vision`. */
function metadataQuery(text) {
  const at = text.indexOf('=');
  return at > 0 ? { [`metadata.${text.slice(0, at).trim()}`]: text.slice(at + 1).trim() } : {};
}

async function fetchJobs(filters, wanted, signal) {
  const jobs = [];
  let after;
  do {
    const page = await api('/v1/jobs', {
      query: { status: filters.status, project_id: filters.project_id, ...metadataQuery(filters.metadata), limit: Math.min(100, wanted - jobs.length), after },
      signal,
    });
    jobs.push(...page.data);
    after = page.has_more ? page.next_cursor : undefined;
  } while (after && jobs.length < wanted);
  return { jobs, hasMore: after !== undefined };
}

/** A row's tick box for the comparison; `selection` keeps the ticks across refreshes. */
function pickBox(job, selection) {
  const box = h('input', { type: 'checkbox', name: 'compare', value: job.id, 'aria-label': `compare ${job.id}`, checked: selection.has(job.id) });
  box.addEventListener('change', () => selection.toggle(job.id, box.checked));
  return h('td', { class: 'pick' }, box);
}

function jobRow(job, projects, datasets, selection) {
  const m = job.latest_metrics;
  const p = job.progress;
  const metadata = Object.entries(job.metadata).map(([k, v]) => `${k}=${v}`).join(' ');
  return h(
    'tr',
    { dataset: { jobId: job.id, status: job.status } },
    pickBox(job, selection),
    h('td', {}, h('a', { href: `#/jobs/${job.id}`, class: 'mono' }, job.id), metadata && h('div', { class: 'small muted' }, metadata)),
    h('td', {}, projects.get(job.project_id) ?? job.project_id),
    h('td', {}, statusBadge(job.status)),
    h('td', {}, datasets.get(job.dataset_id) ?? job.dataset_id),
    h(
      'td',
      { class: 'progress-cell' },
      h('progress', { max: 1, value: p.fraction, 'aria-label': 'progress' }),
      h('div', { class: 'small muted' }, `step ${p.step}/${p.total_steps} · epoch ${p.epoch}/${p.epochs}`),
    ),
    h('td', { class: 'num' }, rate(m.images_per_s)),
    h('td', { class: 'num' }, percent(m.knn_accuracy)),
    h('td', { class: 'num' }, number(m.loss)),
    h('td', { class: 'num', title: job.created_at }, age(job.created_at)),
  );
}

export async function render(view, { query, signal }) {
  const filters = { status: query.get('status') ?? '', project_id: query.get('project_id') ?? '', metadata: query.get('metadata') ?? '' };
  const projects = await projectNames(signal);
  let wanted = PAGE;

  const form = h(
    'form',
    { class: 'filters', id: 'job-filters' },
    h('select', { name: 'status', 'aria-label': 'status' }, STATUS_CHOICES.map(([v, label]) => h('option', { value: v, selected: v === filters.status }, label))),
    h('select', { name: 'project_id', 'aria-label': 'project' }, projectOptions(projects, filters.project_id)),
    h('input', { name: 'metadata', value: filters.metadata, placeholder: 'metadata key=value', 'aria-label': 'metadata filter' }),
    h('button', { type: 'submit' }, 'Filter'),
  );
  const apply = (e) => {
    e.preventDefault();
    setQuery('jobs', Object.fromEntries(new FormData(form)));
  };
  form.addEventListener('submit', apply);
  form.addEventListener('change', apply);

  const compare = h('button', { type: 'button', id: 'compare-selected', class: 'primary', disabled: true }, 'Compare');
  const compareNote = h('span', { class: 'small muted' });
  const picked = new Set();
  const selection = {
    has: (id) => picked.has(id),
    toggle(id, on) {
      if (on) picked.add(id);
      else picked.delete(id);
      compare.disabled = picked.size < 2 || picked.size > MAX_COMPARED;
      compare.textContent = `Compare ${picked.size || ''}`.trim();
      compareNote.textContent = picked.size > MAX_COMPARED ? `at most ${MAX_COMPARED} runs at once` : picked.size === 1 ? 'tick one more' : '';
    },
  };
  compare.addEventListener('click', () => (location.hash = `#/compare?ids=${[...picked].join(',')}`));
  const tableSlot = h('div', { class: 'table-wrap' });
  const more = h('button', { type: 'button', hidden: true }, 'Show more');
  const updated = h('span', { class: 'small muted' });
  replace(
    view,
    h('div', { class: 'page-head' }, h('h1', {}, 'Jobs'), updated, h('span', { class: 'spacer' }), h('a', { href: '#/submit', class: 'button', id: 'new-job' }, 'New job')),
    h('div', { class: 'filters' }, form, h('span', { class: 'spacer' }), compareNote, compare),
    tableSlot,
    more,
  );

  async function refresh() {
    const { jobs, hasMore } = await fetchJobs(filters, wanted, signal);
    const datasets = await datasetNamesOf(jobs.map((j) => j.dataset_id), signal);
    replace(
      tableSlot,
      table(
        ['', 'Job', 'Project', 'Status', 'Dataset', 'Progress', 'Images/s', 'kNN acc.', 'Loss', 'Age'],
        jobs.map((job) => jobRow(job, projects, datasets, selection)),
        { id: 'jobs-table', empty: 'No jobs match.' },
      ),
    );
    more.hidden = !hasMore;
  }
  more.addEventListener('click', () => {
    wanted += PAGE;
    refresh();
  });
  await autoRefresh(refresh, { ms: REFRESH_MS, signal, status: updated });
}
