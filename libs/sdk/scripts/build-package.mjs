// `npm run sdk:package [OUT]`: @moco/sdk as a package a team installs outside this repository.
//
// The SDK's workspace dependencies (@moco/contracts, the embedding client of @moco/models, the
// recipes of @moco/moco/config) are not published, so they are bundled in: esbuild for the
// JavaScript (dist/index.js), dts-bundle-generator for the types (dist/index.d.ts). Every other
// package stays an import and becomes a dependency, at the version installed here. The gRPC proto
// ships beside the bundle (proto/), where the embedding client looks for it. Then `npm pack`.
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const SDK = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const ROOT = path.resolve(SDK, '../..');
const OUT = path.resolve(process.argv[2] ?? path.join(ROOT, 'build/sdk-package'));
const requireFromRoot = createRequire(path.join(ROOT, 'package.json'));
const packageName = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);

await rm(OUT, { recursive: true, force: true });
await mkdir(path.join(OUT, 'dist'), { recursive: true });

const result = await build({
  entryPoints: [path.join(SDK, 'src/index.ts')],
  outfile: path.join(OUT, 'dist/index.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  metafile: true,
  logLevel: 'warning',
  plugins: [
    {
      name: 'outside-packages-stay-imports',
      setup(b) {
        b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@moco/') || args.path.startsWith('node:') ? undefined : { path: args.path, external: true }));
      },
    },
  ],
});
const imported = new Set(
  Object.values(result.metafile.outputs)
    .flatMap((o) => o.imports)
    .filter((i) => i.external && !i.path.startsWith('node:'))
    .map((i) => packageName(i.path)),
);

const dts = path.join(OUT, 'dist/index.d.ts');
execFileSync(
  path.join(ROOT, 'node_modules/.bin/dts-bundle-generator'),
  [path.join(SDK, 'src/index.ts'), '--project', path.join(SDK, 'tsconfig.package.json'), '--no-check', '--silent', '-o', dts],
  { stdio: 'inherit' },
);
// Packages the types name (zod's, for the contracts' inferred shapes) are dependencies too.
for (const m of (await readFile(dts, 'utf8')).matchAll(/from ['"]([^'".][^'"]*)['"]/g)) if (!m[1].startsWith('node:')) imported.add(packageName(m[1]));

await cp(path.join(ROOT, 'proto/moco/v1/embedding.proto'), path.join(OUT, 'proto/moco/v1/embedding.proto'));
const sdk = JSON.parse(await readFile(path.join(SDK, 'package.json'), 'utf8'));
const versionOf = (name) => `^${requireFromRoot(`${name}/package.json`).version}`;
const manifest = {
  name: sdk.name,
  version: sdk.version,
  description: 'Typed client of the MoCo training service: datasets, jobs, live events, checkpoints and exports, models, embeddings over gRPC',
  type: 'module',
  engines: { node: '>=20' },
  exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
  files: ['dist', 'proto'],
  dependencies: Object.fromEntries([...imported].sort().map((name) => [name, versionOf(name)])),
};
await writeFile(path.join(OUT, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', OUT], { cwd: OUT, encoding: 'utf8' }).trim().split('\n').at(-1);
console.log(JSON.stringify({ out: OUT, tarball: path.join(OUT, tarball), dependencies: manifest.dependencies }));
