export { createServiceRegistry, startOpsServer } from './ops-server.js';
export { checkReadiness, type CheckResult, type Readiness, type ReadinessCheck } from './readiness.js';
export { withTimeout } from './timeout.js';
export { childProcessLogger, onShutdown, routeConsole, startService, type ConsoleLevel, type Logger, type StartedService } from './start-up.js';
export { siblingEntry, type SiblingEntry } from './sibling-entry.js';
export { processAlive } from './process-alive.js';
