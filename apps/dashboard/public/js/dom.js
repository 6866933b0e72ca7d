// Building DOM from data without innerHTML: every string becomes a text node, so names and
// messages from the API can never inject markup.

/** h('a', {href, class, dataset: {...}, onclick}, ...children): an element; null/false children are skipped. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name === 'class') el.className = value;
    else if (name === 'value') el.value = value;
    else el.setAttribute(name, value === true ? '' : value);
  }
  el.append(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
  return el;
}

/** A table with a header row; `rows` are arrays of cells (strings or nodes), or <tr> elements. */
export function table(headers, rows, { empty = 'Nothing here yet.', ...props } = {}) {
  return h(
    'table',
    props,
    h('thead', {}, h('tr', {}, headers.map((label) => h('th', {}, label)))),
    h(
      'tbody',
      {},
      rows.length === 0
        ? h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, empty))
        : rows.map((row) => (row instanceof HTMLElement ? row : h('tr', {}, row.map((cell) => h('td', {}, cell))))),
    ),
  );
}

export const statusBadge = (status) => h('span', { class: `badge status-${status}`, dataset: { status } }, status);

export function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, err instanceof Error ? err.message : String(err));
}

/** Replaces the children of `el`. */
export const replace = (el, ...children) => el.replaceChildren(...children.flat().filter(Boolean));
