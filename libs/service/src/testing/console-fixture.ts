// Run by start-up.test.ts as a process of its own: starts a service, then prints the ways libraries do.
import { z } from 'zod';
import { startService } from '../start-up.js';

const { log } = startService('fixture', z.object({ LOG_LEVEL: z.string().default('info') }));
log.info('started');
console.log('plain %s line %d', 'console', 1);
console.warn('a library warning');
console.error(new Error('an error object'));
process.emitWarning('something is deprecated', 'DeprecationWarning');
