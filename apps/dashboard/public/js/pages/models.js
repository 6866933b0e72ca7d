// #/models: promoted checkpoints (models) of every project, with their aliases.
import { api } from '../api.js';
import { h } from '../dom.js';
import { age, number, percent } from '../format.js';
import { projectListPage } from '../list-page.js';

function modelRow(model, projects) {
  const e = model.encoder;
  return h(
    'tr',
    { dataset: { modelId: model.id } },
    h('td', {}, model.aliases.map((a) => h('span', { class: 'chip' }, a))),
    h('td', { class: 'mono' }, model.id),
    h('td', {}, projects.get(model.project_id) ?? model.project_id),
    h('td', {}, h('a', { href: `#/jobs/${model.job_id}`, class: 'mono' }, model.job_id)),
    h('td', { class: 'num' }, `${model.step} (epoch ${model.epoch})${model.final ? ', final' : ''}`),
    h('td', { class: 'num' }, percent(model.metrics.knn_accuracy)),
    h('td', { class: 'num' }, number(model.metrics.loss)),
    h('td', { class: 'nowrap' }, `${e.arch} ×${e.width}, ${e.head}, dim ${e.dim}`),
    h('td', { class: 'num' }, `${model.transform.size}px, ${model.transform.channels} ch`),
    h('td', { class: 'num', title: model.created_at }, age(model.created_at)),
  );
}

export const render = projectListPage({
  page: 'models',
  title: 'Models',
  note: () => 'checkpoints promoted under an alias; promote from a job page',
  load: async (projectId, signal) => (await api('/v1/models', { query: { project_id: projectId }, signal })).data,
  headers: ['Aliases', 'Model (checkpoint)', 'Project', 'Job', 'Step', 'kNN acc.', 'Loss', 'Encoder', 'Input', 'Age'],
  row: modelRow,
  tableProps: { id: 'models-table', empty: 'No models yet: promote a checkpoint from its job page.' },
});
