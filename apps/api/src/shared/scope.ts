import { ApiError } from './api-error.js';

/** Who is calling: resolved from the API key by the auth hook. */
export interface Principal {
  keyId: string;
  projectId: string;
  role: 'member' | 'admin';
}

/**
 * The project a read is limited to, or undefined for "every project". Admin keys (operators) read
 * every project, or the one named by `?project_id=`; other keys read only their own.
 */
export function readScope(principal: Principal, requestedProjectId?: string): string | undefined {
  if (principal.role === 'admin') return requestedProjectId;
  if (requestedProjectId !== undefined && requestedProjectId !== principal.projectId) {
    throw new ApiError(404, 'not_found', `no project ${requestedProjectId}`, 'project_id');
  }
  return principal.projectId;
}

/**
 * The project whose existing resources a key may act on (cancel a job, promote a checkpoint), or
 * undefined for "any": admin keys act on every project; other keys on their own. New resources
 * (datasets, jobs) always go to the key's own project.
 */
export function actScope(principal: Principal): string | undefined {
  return principal.role === 'admin' ? undefined : principal.projectId;
}

/**
 * Operator routes answer 403 `forbidden` to other keys: their existence is no secret (they are in
 * the OpenAPI document), and 403 tells a client that the key, not the URL, is wrong.
 */
export function requireAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw new ApiError(403, 'forbidden', 'this route needs an admin key');
}
