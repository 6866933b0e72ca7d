// Download buttons for files the API serves (checkpoint exports, uploaded datasets).
import { download } from './api.js';
import { h, replace } from './dom.js';

/** A button that saves `path`; a refusal shows beside it. */
export function downloadButton(label, path, title) {
  const status = h('span', { class: 'small error', role: 'alert' });
  const button = h('button', {
    type: 'button',
    title,
    dataset: { download: label },
    onclick: async () => {
      button.disabled = true;
      replace(status);
      try {
        await download(path);
      } catch (err) {
        replace(status, err.message);
      } finally {
        button.disabled = false;
      }
    },
  }, label);
  return h('span', { class: 'download' }, button, status);
}
