// #/submit?dataset_id=: a new training job. Every hyperparameter shows the value the server would
// use (POST /v1/jobs/preview: the recipe for the chosen dataset, the fields set here applied); a
// field set here overrides it, and what the server refuses shows under its field before submitting.
import { api, idempotencyKey, listAll } from '../api.js';
import { errorBox, h, replace } from '../dom.js';
import { number } from '../format.js';
import { ownProject, projectNames } from '../lookups.js';

const PREVIEW_DELAY_MS = 250;

const datasetLabel = (ds) => `${ds.name} · ${ds.image_count} images ${ds.height}×${ds.width}×${ds.channels}${ds.labelled ? ' · labelled' : ''}`;

/** A field's text as the API's value, typed like the recipe's value for it. */
function parseLike(example, text) {
  if (typeof example === 'number') return Number(text);
  if (typeof example === 'boolean') return text === 'true';
  if (Array.isArray(example)) return text.split(',').map((v) => Number(v.trim()));
  return text;
}

const showValue = (v) => (Array.isArray(v) ? v.join(',') : typeof v === 'number' ? number(v, 6) : String(v));

/** `team=vision, run=3` -> {team: 'vision', run: '3'}. */
function parseMetadata(text) {
  return Object.fromEntries(
    text
      .split(',')
      .map((pair) => pair.trim())
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf('=');
        return at < 0 ? [pair, ''] : [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
      }),
  );
}

export async function render(view, { query, signal }) {
  const [projectId, projects] = await Promise.all([ownProject(signal), projectNames(signal)]);
  const all = await listAll('/v1/datasets', { query: { project_id: projectId ?? undefined }, signal });
  const ready = all.filter((ds) => ds.status === 'ready');
  const projectNote = projectId
    ? ['Jobs made here belong to ', h('strong', {}, projects.get(projectId) ?? projectId), ', the project of the admin key in use, and train on its datasets.']
    : ['Jobs made here belong to the project of the admin key in use, and train on its datasets.'];
  if (ready.length === 0) {
    return replace(view, h('h1', {}, 'New job'), h('p', { class: 'muted' }, projectNote), h('p', {}, 'No dataset is ready: ', h('a', { href: '#/datasets' }, 'upload one'), ' first.'));
  }

  const chosen = query.get('dataset_id');
  const datasetSelect = h('select', { name: 'dataset_id', 'aria-label': 'dataset' }, ready.map((ds) => h('option', { value: ds.id, selected: ds.id === chosen }, datasetLabel(ds))));
  const evalSelect = h('select', { name: 'eval_dataset_id', 'aria-label': 'eval dataset' });
  const seed = h('input', { name: 'seed', type: 'number', min: 0, placeholder: 'random', 'aria-label': 'seed' });
  const checkpointEvery = h('input', { name: 'checkpoint_every', type: 'number', min: 1, placeholder: '500', 'aria-label': 'checkpoint every' });
  const metadata = h('input', { name: 'metadata', placeholder: 'team=vision, run=3', 'aria-label': 'metadata' });
  const fields = h('div', { class: 'hp-grid', id: 'hyperparameters' });
  const plan = h('p', { class: 'plan', id: 'job-plan', role: 'status' });
  const problems = h('div', {});
  const cautions = h('div', { id: 'job-warnings' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'create-job' }, 'Create job');
  /** name -> {input, recipe, note} of each hyperparameter, built from the first preview. */
  const inputs = new Map();

  function syncEvalChoices() {
    const train = ready.find((ds) => ds.id === datasetSelect.value);
    const current = evalSelect.value;
    // The kNN monitor needs labels, and the encoder's input channels must match.
    const choices = ready.filter((ds) => ds.labelled && ds.channels === train.channels);
    replace(evalSelect, h('option', { value: '' }, 'none (no kNN monitor)'), choices.map((ds) => h('option', { value: ds.id, selected: ds.id === current }, datasetLabel(ds))));
  }

  function body() {
    const hyperparameters = {};
    for (const [name, { input, recipe }] of inputs) if (input.value.trim() !== '') hyperparameters[name] = parseLike(recipe, input.value.trim());
    return {
      dataset_id: datasetSelect.value,
      ...(evalSelect.value && { eval_dataset_id: evalSelect.value }),
      ...(seed.value && { seed: Number(seed.value) }),
      ...(checkpointEvery.value && { checkpoint_every: Number(checkpointEvery.value) }),
      ...(metadata.value.trim() && { metadata: parseMetadata(metadata.value) }),
      hyperparameters,
    };
  }

  function showFields(resolved) {
    for (const [name, value] of Object.entries(resolved)) {
      let field = inputs.get(name);
      if (!field) {
        const input = h('input', { name, 'aria-label': name, autocomplete: 'off' });
        const note = h('span', { class: 'small muted' });
        field = { input, note, recipe: value };
        inputs.set(name, field);
        input.addEventListener('input', previewSoon);
        fields.append(h('label', { class: 'hp', dataset: { field: name } }, h('span', { class: 'hp-name' }, name), input, note));
      }
      // What the server would use: the recipe's value, or the one set here.
      field.recipe = field.input.value.trim() === '' ? value : field.recipe;
      field.input.placeholder = showValue(value);
      field.note.textContent = field.input.value.trim() === '' ? 'recipe' : `set (recipe: ${showValue(field.recipe)})`;
    }
  }

  /** Settings the server takes but knows to be bad (a queue as large as the dataset, ...), under their fields. */
  function showWarnings(warnings) {
    for (const w of warnings) {
      const field = inputs.get(w.field.replace(/^hyperparameters\./, ''));
      if (field) {
        field.note.classList.add('warn');
        field.note.textContent = w.message;
      }
    }
    replace(cautions, warnings.length > 0 && h('ul', { class: 'warnings' }, warnings.map((w) => h('li', {}, h('span', { class: 'mono' }, w.field), ': ', w.message))));
  }

  function showProblems(err) {
    for (const { note, input } of inputs.values()) input.classList.remove('invalid'), note.classList.remove('error', 'warn');
    const details = err?.details ?? [];
    for (const d of details) {
      const field = inputs.get(d.param?.replace(/^hyperparameters\./, ''));
      if (field) {
        field.input.classList.add('invalid');
        field.note.classList.add('error');
        field.note.textContent = d.message;
      }
    }
    replace(problems, err && errorBox(err));
    submit.disabled = Boolean(err);
  }

  let latest = 0;
  async function preview() {
    const ticket = ++latest;
    try {
      const answer = await api('/v1/jobs/preview', { method: 'POST', json: body(), signal });
      if (ticket !== latest) return;
      showFields(answer.hyperparameters);
      showProblems(null);
      // Warnings come with the dataset-size recipes; an API without them answers none.
      showWarnings(answer.warnings ?? []);
      const hp = answer.hyperparameters;
      plan.textContent = `${hp.epochs} epochs × ${answer.steps_per_epoch} steps = ${answer.total_steps} steps of ${hp.batch_size} images; ${hp.encoder} (${hp.stem} stem, width ${hp.width}), K ${hp.K}.`;
    } catch (err) {
      if (signal.aborted || ticket !== latest) return;
      plan.textContent = '';
      showWarnings([]);
      showProblems(err);
    }
  }
  let timer;
  function previewSoon() {
    clearTimeout(timer);
    timer = setTimeout(preview, PREVIEW_DELAY_MS);
  }

  const form = h(
    'form',
    { class: 'card submit-form', id: 'submit-job' },
    h('p', { class: 'muted' }, projectNote),
    h(
      'div',
      { class: 'form-row' },
      h('label', {}, 'Dataset', datasetSelect),
      h('label', {}, 'Eval dataset', evalSelect),
      h('label', {}, 'Seed', seed),
      h('label', {}, 'Checkpoint every (steps)', checkpointEvery),
      h('label', {}, 'Metadata', metadata),
    ),
    h('h2', {}, 'Hyperparameters ', h('span', { class: 'small muted' }, '(empty: the value shown, from the recipe for this dataset)')),
    fields,
    plan,
    cautions,
    problems,
    h('div', { class: 'form-actions' }, submit),
  );
  datasetSelect.addEventListener('change', () => {
    syncEvalChoices();
    previewSoon();
  });
  for (const input of [evalSelect, seed, checkpointEvery, metadata]) input.addEventListener('input', previewSoon);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      const job = await api('/v1/jobs', { method: 'POST', json: body(), headers: { 'idempotency-key': idempotencyKey() }, signal });
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      showProblems(err);
    }
  });

  syncEvalChoices();
  replace(view, h('div', { class: 'page-head' }, h('a', { href: '#/jobs', class: 'back' }, '← Jobs'), h('h1', {}, 'New training job')), form);
  await preview();
}
