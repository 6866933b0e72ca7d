// #/datasets: every project's datasets, newest first, and a form to upload one.
import { listAll, uploadDataset } from '../api.js';
import { errorBox, h, replace } from '../dom.js';
import { downloadButton } from '../downloads.js';
import { age, bytes } from '../format.js';
import { projectListPage } from '../list-page.js';

function datasetRow(ds, projects) {
  const shape = ds.height ? `${ds.height}×${ds.width}×${ds.channels}` : '—';
  const classes = ds.class_names ? `${ds.class_names.length} classes` : ds.labelled ? 'labelled' : 'unlabelled';
  return h(
    'tr',
    { dataset: { datasetId: ds.id, status: ds.status } },
    h('td', {}, h('a', { href: `#/datasets/${ds.id}` }, h('strong', {}, ds.name)), h('div', { class: 'small muted mono' }, ds.id)),
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

/**
 * The upload form: the file goes out streamed with a progress bar, then the API validates it (every
 * image decoded) before answering; the new dataset's page opens then.
 */
function uploadForm(signal) {
  // No accept filter: idx files often have no extension.
  const file = h('input', { type: 'file', name: 'file', required: true, 'aria-label': 'dataset file' });
  const name = h('input', { name: 'name', placeholder: 'name (default: the file name)', 'aria-label': 'dataset name' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Upload');
  const progress = h('progress', { max: 1, value: 0, hidden: true, id: 'upload-progress' });
  const status = h('span', { class: 'small muted', id: 'upload-status', role: 'status' });
  const problem = h('div', {});
  const form = h(
    'form',
    { class: 'card upload', id: 'upload-dataset' },
    h('h2', {}, 'Upload a dataset ', h('span', { class: 'small muted' }, 'tar, tar.gz or zip of class folders or idx files, CIFAR-10 batches, or an idx file; it goes to the project of this key')),
    h('div', { class: 'form-row' }, file, name, button, progress, status),
    problem,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const chosen = file.files[0];
    if (!chosen) return;
    button.disabled = true;
    progress.hidden = false;
    replace(problem);
    try {
      const ds = await uploadDataset(chosen, {
        name: name.value.trim(),
        signal,
        onProgress(sent, total) {
          progress.value = total ? sent / total : 0;
          status.textContent = `${bytes(sent)} of ${bytes(total)} sent (${total ? Math.floor((100 * sent) / total) : 0}%)`;
        },
        onSent() {
          progress.removeAttribute('value');
          status.textContent = 'sent; the API is checking every image…';
        },
      });
      location.hash = `#/datasets/${ds.id}`;
    } catch (err) {
      if (signal.aborted) return;
      progress.hidden = true;
      status.textContent = '';
      replace(problem, errorBox(err));
      button.disabled = false;
    }
  });
  return form;
}

export const render = projectListPage({
  page: 'datasets',
  title: 'Datasets',
  note: (datasets) => `${datasets.length} shown`,
  load: (projectId, signal) => listAll('/v1/datasets', { query: { project_id: projectId }, signal }),
  headers: ['Name', 'Project', 'Status', 'Images', 'H×W×C', 'Labels', 'Format', 'Size', 'File', 'Age'],
  row: datasetRow,
  tableProps: { id: 'datasets-table', empty: 'No datasets.' },
  above: uploadForm,
});
