export * from './evaluation.js';
export * from './features.js';
export * from './knn-monitor.js';
export * from './stopping.js';
export * from './train.js';
