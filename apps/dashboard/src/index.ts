export { dashboard } from './plugin.js';
