// Reading a job's metric series from the API.
import { api } from './api.js';

/** Every point of the `names` metrics of job `id` (a Map name -> [[step, value]]), following next_from_step for long jobs. */
export async function loadMetrics(id, names, signal) {
  const series = new Map(names.map((name) => [name, []]));
  let fromStep;
  do {
    const res = await api(`/v1/jobs/${encodeURIComponent(id)}/metrics`, { query: { name: names.join(','), from_step: fromStep }, signal });
    for (const s of res.data) series.get(s.name).push(...s.points);
    fromStep = res.has_more ? res.next_from_step : undefined;
  } while (fromStep !== undefined);
  return series;
}
