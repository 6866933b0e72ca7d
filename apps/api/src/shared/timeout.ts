// The one timeout helper lives with the services' shared edge code.
export { withTimeout } from '@moco/service';
