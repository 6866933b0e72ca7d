import type { Schedule } from './config.js';

/**
 * Learning rate for an epoch (set once per epoch, as the reference's adjust_learning_rate).
 * `epoch` may be fractional for per-step schedules.
 */
export function learningRate(base: number, schedule: Schedule, epoch: number, epochs: number): number {
  if (schedule.kind === 'cosine') return base * 0.5 * (1 + Math.cos((Math.PI * epoch) / epochs));
  const passed = schedule.milestones.filter((m) => epoch >= m).length;
  return base * schedule.gamma ** passed;
}
