// The worker's side of its messages to and from a trainer child: the shapes are contracts
// (@moco/contracts trainer-messages); the checkpoint object keys and the job's own errors live here.
export function checkpointPrefix(projectId: string, jobId: string): string {
  return `projects/${projectId}/jobs/${jobId}/checkpoints/`;
}

export function checkpointKey(prefix: string, step: number): string {
  return `${prefix}step-${String(step).padStart(9, '0')}.mocotens`;
}

/** A problem with the job's own inputs: it fails at once, since a retry would fail the same way. */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
