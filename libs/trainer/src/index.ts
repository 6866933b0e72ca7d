export * from './features.js';
export * from './knn-monitor.js';
export * from './train.js';
