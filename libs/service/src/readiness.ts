import { withTimeout } from './timeout.js';

/** One dependency of a service: resolves when it answers, rejects (or throws) when it does not. */
export type ReadinessCheck = () => Promise<unknown> | unknown;
export type CheckResult = 'ok' | 'failed';
export interface Readiness {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

const CHECK_TIMEOUT_MS = 2_000;

/**
 * Runs every check at once, each bounded in time. Why one failed goes to `onFailure` (the log), not
 * to the caller: readiness endpoints are unauthenticated.
 */
export async function checkReadiness(
  checks: Record<string, ReadinessCheck>,
  onFailure: (name: string, err: unknown) => void = () => {},
): Promise<Readiness> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
      try {
        await withTimeout(Promise.resolve().then(check), CHECK_TIMEOUT_MS, `${name} check`);
        return [name, 'ok'];
      } catch (err) {
        onFailure(name, err);
        return [name, 'failed'];
      }
    }),
  );
  return { ready: entries.every(([, r]) => r === 'ok'), checks: Object.fromEntries(entries) };
}
