// #/datasets/<id>: one dataset: what validation learned, images per class and thumbnails of a few
// images (picked at validation, classes in turn).
import { api } from '../api.js';
import { h, replace, table } from '../dom.js';
import { bytes, dateTime } from '../format.js';
import { projectNames } from '../lookups.js';

const SAMPLES = 48;

/** One row per class: its name, its images and a bar of its share (the largest class fills it). */
function classRows(ds) {
  const counts = ds.class_counts ?? [];
  const most = Math.max(1, ...counts);
  return counts.map((count, label) => {
    const bar = h('span', { class: 'bar' });
    // Set through the CSSOM: the page's CSP refuses style attributes.
    bar.style.width = `${(100 * count) / most}%`;
    return h(
      'tr',
      { dataset: { label: String(label), count: String(count) } },
      h('td', {}, ds.class_names?.[label] ?? `label ${label}`),
      h('td', { class: 'num' }, count.toLocaleString()),
      h('td', { class: 'num' }, `${((100 * count) / ds.image_count).toFixed(1)}%`),
      h('td', { class: 'bar-cell' }, bar),
    );
  });
}

function thumbnail(sample) {
  const caption = sample.class_name ?? (sample.label === null ? '' : `label ${sample.label}`);
  return h('figure', { class: 'thumb' }, h('img', { src: `data:image/png;base64,${sample.png}`, alt: caption || 'sample image' }), caption && h('figcaption', {}, caption));
}

export async function render(view, { params: [id], signal }) {
  const path = `/v1/datasets/${encodeURIComponent(id)}`;
  const [ds, projects] = await Promise.all([api(path, { signal }), projectNames(signal)]);
  const samples = ds.status === 'ready' ? (await api(`${path}/samples`, { query: { n: SAMPLES }, signal })).data : [];
  const facts = [
    ['Project', projects.get(ds.project_id) ?? ds.project_id],
    ['Images', ds.image_count?.toLocaleString() ?? '—'],
    ['H×W×C', ds.height ? `${ds.height}×${ds.width}×${ds.channels}` : '—'],
    ['Labels', ds.class_names ? `${ds.class_names.length} classes` : ds.labelled ? 'labelled' : 'unlabelled'],
    ['Format', ds.format ?? '—'],
    ['Size', bytes(ds.bytes)],
    ['Source', ds.source_uri ?? ds.source],
    ['Created', dateTime(ds.created_at)],
  ];
  replace(
    view,
    h(
      'div',
      { class: 'page-head' },
      h('a', { href: '#/datasets', class: 'back' }, '← Datasets'),
      h('h1', {}, ds.name),
      h('span', { class: `badge status-${ds.status}` }, ds.status),
      h('span', { class: 'small muted mono' }, ds.id),
      h('span', { class: 'spacer' }),
      ds.status === 'ready' && h('a', { href: `#/submit?dataset_id=${encodeURIComponent(ds.id)}`, class: 'button', id: 'train-on-dataset' }, 'New job on this dataset'),
    ),
    ds.error && h('div', { class: 'failure', role: 'alert' }, h('strong', {}, 'Invalid: '), h('span', { class: 'mono' }, ds.error.code), h('p', {}, ds.error.message)),
    h('dl', { class: 'summary' }, facts.map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, value)))),
    h(
      'div',
      { class: 'columns' },
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Sample images ', h('span', { class: 'small muted' }, `(${samples.length}, classes in turn)`)),
        samples.length ? h('div', { class: 'thumbs', id: 'dataset-samples' }, samples.map(thumbnail)) : h('p', { class: 'muted' }, 'No thumbnails: this dataset was validated before they were kept.'),
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Images per class'),
        ds.class_counts
          ? h('div', { class: 'scroll' }, table(['Class', 'Images', 'Share', ''], classRows(ds), { id: 'class-counts' }))
          : h('p', { class: 'muted' }, ds.labelled ? 'Not counted: this dataset was validated before counts were kept.' : 'Unlabelled: no classes.'),
      ),
    ),
  );
}
