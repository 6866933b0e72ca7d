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
