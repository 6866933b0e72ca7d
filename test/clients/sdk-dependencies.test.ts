import path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

// What loading the TypeScript SDK (and the shapes it shares with the API) pulls in: only what the
// wire needs. esbuild follows every import from the SDK's entry, through the workspace packages it
// uses, and reports the outside packages reached.

const ROOT = path.join(import.meta.dirname, '../..');
const WIRE = ['zod', '@grpc/grpc-js', '@grpc/proto-loader', 'eventsource-parser'];

async function outsidePackagesOf(entry: string): Promise<string[]> {
  const result = await build({
    entryPoints: [path.join(ROOT, entry)],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
    // Every package outside the workspace stays an import; the workspace's are followed.
    plugins: [
      {
        name: 'outside-packages',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@moco/') ? undefined : { path: args.path, external: true }));
        },
      },
    ],
  });
  const imports = Object.values(result.metafile.inputs).flatMap((input) => input.imports.filter((i) => i.external).map((i) => i.path));
  const name = (spec: string) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
  return [...new Set(imports.filter((i) => !i.startsWith('node:')).map(name))].sort();
}

describe('dependencies', () => {
  it('the SDK reaches only the packages the wire needs (no Prisma, pg, tfjs or sharp)', async () => {
    const reached = await outsidePackagesOf('libs/sdk/src/index.ts');
    expect(reached).toContain('@grpc/grpc-js');
    expect(reached.filter((p) => !WIRE.includes(p))).toEqual([]);
  });

  it('the contracts reach zod alone (the MoCo recipes come from @moco/moco/config, without tfjs)', async () => {
    expect(await outsidePackagesOf('libs/contracts/src/index.ts')).toEqual(['zod']);
  });
});
