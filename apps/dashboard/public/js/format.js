// How numbers, sizes and times read on the pages.

const nothing = '—';

export function age(iso, now = Date.now()) {
  if (!iso) return nothing;
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d`;
}

const pad = (n) => String(n).padStart(2, '0');

/** Local time of day, 24-hour: 14:03:27. */
export const time = (iso) => {
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
};

/** Local date and time, compact: 2026-11-28 14:03:27. */
export const dateTime = (iso) => {
  if (!iso) return nothing;
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time(iso)}`;
};

export const number = (v, digits = 4) => (typeof v === 'number' && Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : nothing);

export const percent = (v) => (typeof v === 'number' && Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : nothing);

export const rate = (v) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(v < 10 ? 1 : 0) : nothing);

export function bytes(n) {
  if (typeof n !== 'number') return nothing;
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) (n /= 1000), i++;
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}
