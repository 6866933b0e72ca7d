import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { DecodeBudget } from './decode-budget.js';

const MP = 1024 * 1024;

/** Whether the promise has settled by the time already queued work has run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('DecodeBudget', () => {
  it('refuses a request past its own budget, RESOURCE_EXHAUSTED', async () => {
    const budget = new DecodeBudget({ perRequest: 4 * MP, inFlight: 8 * MP });
    await expect(budget.reserve(4 * MP + 1)).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
  });

  it('holds what requests decode at once to the in-flight budget: the next waits for a release, in order', async () => {
    const budget = new DecodeBudget({ perRequest: 8 * MP, inFlight: 8 * MP });
    const first = await budget.reserve(6 * MP);
    const second = budget.reserve(4 * MP);
    const third = budget.reserve(1 * MP);
    // The third would fit, but does not overtake the second (a large request is not starved).
    expect([await settled(second), await settled(third)]).toEqual([false, false]);
    first();
    const [releaseSecond, releaseThird] = await Promise.all([second, third]);
    releaseSecond();
    releaseThird();
  });

  it('runs a request larger than the whole in-flight budget alone rather than never', async () => {
    const budget = new DecodeBudget({ perRequest: 16 * MP, inFlight: 4 * MP });
    const small = await budget.reserve(MP);
    const large = budget.reserve(12 * MP);
    expect(await settled(large)).toBe(false);
    small();
    (await large)();
  });
});
