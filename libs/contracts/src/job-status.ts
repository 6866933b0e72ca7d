import { z } from 'zod';

export const JOB_STATUS_VALUES = ['queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'] as const;
export const JobStatus = z.enum(JOB_STATUS_VALUES);
export type JobStatusValue = z.infer<typeof JobStatus>;
