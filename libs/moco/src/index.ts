export * from './config.js';
export * from './rng.js';
export * from './layers.js';
export * from './resnet-plan.js';
export * from './encoder.js';
export * from './key-queue.js';
export * from './sgd.js';
export * from './schedule.js';
export * from './moco.js';
export * from './tensor-file.js';
export * from './training-state.js';
export * from './eval/knn.js';
export * from './eval/linear-probe.js';
export * from './info-nce.js';
export * from './augment/index.js';
export * from './backend/select-backend.js';
// One tfjs instance for every package: apps and libs use this re-export, never their own import.
export * as tf from './tf.js';
export * from './export/index.js';
