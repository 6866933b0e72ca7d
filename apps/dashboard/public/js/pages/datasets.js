// #/datasets: every project's datasets, newest first.
import { listAll } from '../api.js';
import { h } from '../dom.js';
import { downloadButton } from '../downloads.js';
import { age, bytes } from '../format.js';
import { projectListPage } from '../list-page.js';

function datasetRow(ds, projects) {
  const shape = ds.height ? `${ds.height}×${ds.width}×${ds.channels}` : '—';
  const classes = ds.class_names ? `${ds.class_names.length} classes` : ds.labelled ? 'labelled' : 'unlabelled';
  return h(
    'tr',
    { dataset: { datasetId: ds.id, status: ds.status } },
    h('td', {}, h('strong', {}, ds.name), h('div', { class: 'small muted mono' }, ds.id)),
    h('td', {}, projects.get(ds.project_id) ?? ds.project_id),
    h('td', {}, h('span', { class: `badge status-${ds.status}` }, ds.status), ds.error && h('div', { class: 'small error' }, ds.error.message)),
    h('td', { class: 'num' }, ds.image_count?.toLocaleString() ?? '—'),
    h('td', {}, shape),
    h('td', {}, classes),
    h('td', {}, ds.format ?? '—', h('div', { class: 'small muted' }, ds.source)),
    h('td', { class: 'num' }, bytes(ds.bytes)),
    h('td', { class: 'small mono uri' }, ds.download_url ? downloadButton('Download', ds.download_url, 'the file as uploaded') : ds.source_uri),
    h('td', { class: 'num', title: ds.created_at }, age(ds.created_at)),
  );
}

export const render = projectListPage({
  page: 'datasets',
  title: 'Datasets',
  note: (datasets) => `${datasets.length} shown`,
  load: (projectId, signal) => listAll('/v1/datasets', { query: { project_id: projectId }, signal }),
  headers: ['Name', 'Project', 'Status', 'Images', 'H×W×C', 'Labels', 'Format', 'Size', 'File', 'Age'],
  row: datasetRow,
  tableProps: { id: 'datasets-table', empty: 'No datasets.' },
});
