// Where the worker puts checkpoints (the object key convention readers rely on).
export { checkpointKey, checkpointPrefix } from './protocol.js';
