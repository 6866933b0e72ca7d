import { toMocoConfig, type ResolvedHyperparameters } from '@moco/contracts';
import { BACKEND_MEMORY_CAP_BYTES, estimateTrainingMemory } from '@moco/moco/config';
import type { ApiConfig } from '../config.js';
import { ApiError } from '../shared/api-error.js';

const GIB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GIB).toFixed(2)} GiB`;

/** Throws 422 `model_too_large` for a job whose training step would not fit a worker. */
export type CheckFitsWorkers = (h: ResolvedHyperparameters, channels: number) => void;

/**
 * The check against the fleet the configuration describes: the smaller of the backend's cap (the
 * wasm heap) and WORKER_FLEET_MEMORY_MB. A job refused here would otherwise fail mid-run.
 */
export function fitsWorkers(config: Pick<ApiConfig, 'WORKER_FLEET_BACKEND' | 'WORKER_FLEET_MEMORY_MB'>): CheckFitsWorkers {
  const backend = config.WORKER_FLEET_BACKEND;
  const memory = config.WORKER_FLEET_MEMORY_MB === undefined ? Infinity : config.WORKER_FLEET_MEMORY_MB * 2 ** 20;
  const cap = BACKEND_MEMORY_CAP_BYTES[backend] ?? Infinity;
  const limit = Math.min(cap, memory);
  const limitIs = limit === cap ? `the ${backend} backend's limit` : `the workers' memory (WORKER_FLEET_MEMORY_MB, ${backend} backend)`;
  return (h, channels) => {
    if (limit === Infinity) return;
    const estimate = estimateTrainingMemory(toMocoConfig(h, channels), h.image_size);
    if (estimate.bytes <= limit) return;
    throw new ApiError(
      422,
      'model_too_large',
      `a training step of this job needs about ${gib(estimate.bytes)} (estimated: width ${h.width}, batch_size ${h.batch_size}, ` +
        `image_size ${h.image_size}, ${h.encoder}${h.symmetric ? ', symmetric loss' : ''}), more than ${limitIs} of ${gib(limit)}: ` +
        `lower batch_size, width or image_size${h.symmetric ? ', or set symmetric false (half the activations)' : ''}`,
      'hyperparameters',
    );
  };
}
