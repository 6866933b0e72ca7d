// Names for ids shown in tables (projects, datasets).
import { api } from './api.js';

export async function projectNames(signal) {
  const { data } = await api('/v1/admin/projects', { signal });
  return new Map(data.map((p) => [p.id, p.name]));
}

// Datasets never change name: kept for the whole visit.
const datasetNames = new Map();

/** id -> name of the given datasets; those not seen before are fetched in parallel. */
export async function datasetNamesOf(ids, signal) {
  const missing = [...new Set(ids)].filter((id) => id && !datasetNames.has(id));
  await Promise.all(
    missing.map(async (id) => {
      const ds = await api(`/v1/datasets/${encodeURIComponent(id)}`, { signal });
      datasetNames.set(id, ds.name);
    }),
  );
  return datasetNames;
}
