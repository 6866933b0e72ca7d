import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// Each service's start-up as a real process: what an operator's log collector sees.

const ROOT = path.join(import.meta.dirname, '../../..');
const TSX = import.meta.resolve('tsx');

function run(entry: string, env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--import', TSX, path.join(ROOT, entry)], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const lines = `${r.stdout}${r.stderr}`.split('\n').filter(Boolean);
  return { status: r.status, lines };
}

const parseAll = (lines: string[]) =>
  lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`a plain-text line in the log: ${line}`);
    }
  });

describe('service start-up', () => {
  it.each([
    ['api', 'apps/api/src/main.ts'],
    ['worker', 'apps/worker/src/main.ts'],
    ['embedder', 'apps/embedder/src/main.ts'],
  ])('%s: a bad environment exits 1 with one JSON line naming every bad variable, no stack trace', (service, entry) => {
    const { status, lines } = run(entry, { DATABASE_URL: 'mysql://nope', LOG_LEVEL: 'loud', STORAGE_KIND: 's3' });
    expect(status).toBe(1);
    expect(lines).toHaveLength(1);
    const [entryLine] = parseAll(lines);
    expect(entryLine).toMatchObject({ level: 60, service });
    expect(entryLine!.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^DATABASE_URL: must be a postgresql/), expect.stringMatching(/^LOG_LEVEL: /)]),
    );
    expect(lines[0]).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('a rule across variables (storage) is reported the same way', () => {
    const { status, lines } = run('apps/api/src/main.ts', { STORAGE_KIND: 's3' });
    expect(status).toBe(1);
    expect(parseAll(lines)[0]).toMatchObject({ problems: ['S3_BUCKET: required when STORAGE_KIND=s3'] });
  });

  it('console output and process warnings become JSON log entries', () => {
    const { status, lines } = run('libs/service/src/testing/console-fixture.ts', {});
    expect(status).toBe(0);
    const entries = parseAll(lines);
    expect(entries.map((e) => [e.level, e.source ?? null, e.msg])).toEqual([
      [30, null, 'started'],
      [30, 'console', 'plain console line 1'],
      [40, 'console', 'a library warning'],
      [50, 'console', expect.stringMatching(/^Error: an error object/)],
      [40, 'process', 'something is deprecated'],
    ]);
    expect(entries[4]).toMatchObject({ warning_type: 'DeprecationWarning', service: 'fixture' });
  });
});
