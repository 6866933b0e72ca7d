/**
 * Polls `probe` until it returns a value; on timeout the error names what was awaited and, when
 * given, the context (e.g. worker log tails) that explains why.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  opts: { timeoutMs?: number; context?: () => string } = {},
): Promise<T> {
  const end = Date.now() + (opts.timeoutMs ?? 90_000);
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${opts.context ? `\n${opts.context()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
