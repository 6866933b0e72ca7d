import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { bearer, msUntilRefused, useTestApp } from '../testing/test-app.js';

const t = useTestApp();
const script = new URL('./keys.ts', import.meta.url).pathname;

/** Runs the CLI against the test app's database; stdout parsed as JSON, or the failure. */
async function keys(...args: string[]): Promise<{ code: number; out: unknown; err: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, ...args], {
      env: { ...process.env, DATABASE_URL: t.current.config.DATABASE_URL },
    });
    return { code: 0, out: JSON.parse(stdout), err: stderr };
  } catch (e) {
    const failed = e as { code: number; stderr: string };
    return { code: failed.code, out: null, err: failed.stderr };
  }
}

const status = async (secret: string) => (await t.current.app.inject({ url: '/v1/datasets', headers: bearer(secret) })).statusCode;

describe('keys CLI', () => {
  it('lists, rotates and revokes keys; the API refuses a revoked key within a second', async () => {
    const alice = await t.current.createKey('alice');
    const listed = await keys('list', '--project-id', alice.project_id);
    expect(listed.out).toEqual([expect.objectContaining({ id: alice.key_id, prefix: alice.key.slice(0, 9), revoked_at: null })]);
    expect(JSON.stringify(listed.out)).not.toContain(alice.key.slice(9));

    const rotated = (await keys('rotate', alice.key_id, '--grace', '600')).out as { key: string; id: string; previous: { expires_at: string } };
    expect(rotated.previous.expires_at).toEqual(expect.any(String));
    expect(await status(alice.key)).toBe(200);
    expect(await status(rotated.key)).toBe(200);

    const revoked = await keys('revoke', alice.key_id);
    expect(revoked.out).toMatchObject({ id: alice.key_id, revoked_at: expect.any(String) });
    // Revoked by another process: refused once its notification reaches the API.
    expect(await msUntilRefused(t.current.app, alice.key)).toBeLessThan(1_000);
    expect(await status(rotated.key)).toBe(200);
  });

  it('fails with a message and a non-zero status', async () => {
    const [missing, badGrace] = await Promise.all([keys('rotate', 'key_nope'), keys('rotate', 'key_nope', '--grace', 'soon')]);
    expect(missing).toMatchObject({ code: 1, err: 'not_found: no API key key_nope\n' });
    expect(badGrace).toMatchObject({ code: 2, err: expect.stringMatching(/^--grace: /) });
  });
});
