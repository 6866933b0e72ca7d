// What the list pages share: a project filter kept in the address, and the page around a table.
import { h, replace, table } from './dom.js';
import { projectNames } from './lookups.js';

/** The options of a project filter: "All projects", then each project by name. */
export function projectOptions(names, selected) {
  const sorted = [...names].sort((a, b) => a[1].localeCompare(b[1]));
  return [['', 'All projects'], ...sorted].map(([id, name]) => h('option', { value: id, selected: id === selected }, name));
}

/** Sets the route's query (the filters) in the address, which re-renders the page with them. */
export function setQuery(page, values) {
  const query = new URLSearchParams(Object.entries(values).filter(([, v]) => v));
  location.hash = `#/${page}${query.size ? `?${query}` : ''}`;
}

/**
 * The render function of a page listing every project's `load(projectId, signal)` items: a title,
 * `note(items)`, a project filter (#/<page>?project_id=), `above(signal)` if given (a form) and a
 * table of `row(item, projectNames)`.
 */
export function projectListPage({ page, title, note, load, headers, row, tableProps, above }) {
  return async (view, { query, signal }) => {
    const projectId = query.get('project_id') ?? '';
    const [projects, items] = await Promise.all([projectNames(signal), load(projectId, signal)]);
    const filter = h('select', { name: 'project_id', 'aria-label': 'project' }, projectOptions(projects, projectId));
    filter.addEventListener('change', () => setQuery(page, { project_id: filter.value }));
    replace(
      view,
      h('div', { class: 'page-head' }, h('h1', {}, title), h('span', { class: 'small muted' }, note(items))),
      h('div', { class: 'filters' }, filter),
      above?.(signal),
      h('div', { class: 'table-wrap' }, table(headers, items.map((item) => row(item, projects)), tableProps)),
    );
  };
}
