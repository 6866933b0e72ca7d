// #/queue: the training queue's health (BullMQ on Redis) and the jobs being trained now.
import { api, autoRefresh } from '../api.js';
import { h, replace, statusBadge, table } from '../dom.js';
import { age } from '../format.js';

const REFRESH_MS = 5000;
const COUNTS = [
  ['waiting', 'Waiting'],
  ['active', 'Active'],
  ['delayed', 'Delayed (retry)'],
  ['failed', 'Failed'],
  ['completed', 'Completed'],
];

function stat(name, label, value, warn = false) {
  return h('div', { class: `stat ${warn ? 'warn' : ''}`, dataset: { queue: name } }, h('div', { class: 'stat-value' }, String(value)), h('div', { class: 'stat-label' }, label));
}

export async function render(view, { signal }) {
  const stats = h('div', { class: 'stats', id: 'queue-stats' });
  const workers = h('div', {});
  const running = h('div', {});
  const updated = h('span', { class: 'small muted' });
  replace(
    view,
    h('div', { class: 'page-head' }, h('h1', {}, 'Queue'), updated),
    stats,
    h('div', { class: 'columns' }, h('section', { class: 'card' }, h('h2', {}, 'Workers online'), workers), h('section', { class: 'card' }, h('h2', {}, 'Running jobs'), running)),
  );

  async function refresh() {
    const [q, live] = await Promise.all([api('/v1/admin/queue', { signal }), api('/v1/jobs', { query: { status: 'running,cancelling', limit: 100 }, signal })]);
    replace(stats, stat('workers', 'Workers online', q.workers.length, q.workers.length === 0), COUNTS.map(([name, label]) => stat(name, label, q[name], name === 'failed' && q.failed > 0)));
    replace(
      workers,
      table(
        ['Name', 'Address', 'Connected', 'Idle'],
        q.workers.map((w) => [w.name ?? h('span', { class: 'muted' }, 'unnamed'), h('span', { class: 'mono' }, w.addr), `${w.age_s} s`, `${w.idle_s} s`]),
        { id: 'workers-table', empty: 'No worker is connected: queued jobs wait.' },
      ),
    );
    replace(
      running,
      table(
        ['Job', 'Status', 'Worker', 'Step', 'Heartbeat'],
        live.data.map((j) => [
          h('a', { href: `#/jobs/${j.id}`, class: 'mono' }, j.id),
          statusBadge(j.status),
          j.worker_id ?? '—',
          `${j.progress.step}/${j.progress.total_steps}`,
          j.heartbeat_at ? `${age(j.heartbeat_at)} ago` : '—',
        ]),
        { empty: 'Nothing is training.' },
      ),
    );
  }
  await autoRefresh(refresh, { ms: REFRESH_MS, signal, status: updated });
}
