// Names for ids shown in tables (projects, datasets), and the project of the key in use.
import { api, getKey, listAll } from './api.js';

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

/**
 * The project of the admin key in use, where new jobs and datasets go: the live key whose prefix
 * starts the secret (lists show prefixes only). Null when that does not single out one project.
 */
export async function ownProject(signal) {
  const secret = getKey();
  const keys = await listAll('/v1/admin/keys', { signal });
  const projects = new Set(keys.filter((k) => !k.revoked_at && secret?.startsWith(k.prefix)).map((k) => k.project_id));
  return projects.size === 1 ? [...projects][0] : null;
}
