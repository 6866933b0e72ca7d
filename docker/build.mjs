// `npm run build [OUT]`: the workspace compiled to JavaScript, so the services start with plain `node`
// (the production image runs this tree; nothing in it needs tsx or TypeScript).
//
// OUT (default ./build) mirrors the repository: each package's src/**/*.ts becomes .js at the same
// path (tests and test helpers left out), each package.json's exports point at the .js, and the files
// the code reads at run time are copied beside (proto/, prisma/, the dashboard's public/, the native
// addon). Paths between them stay as in the repository, so relative lookups such as
// `new URL('../../../proto', import.meta.url)` hold. esbuild transpiles file by file (no bundling,
// no type check: `npm run typecheck` does that).
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const OUT = path.resolve(process.argv[2] ?? path.join(ROOT, 'build'));
const SKIP_DIRS = new Set(['node_modules', 'testing', 'obj.target', '.deps']);
const isTest = (name) => name.endsWith('.test.ts') || name.endsWith('.d.ts');

async function* walk(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) yield* walk(full);
    } else if (entry.isFile()) yield full;
  }
}

/** `./src/index.ts` -> `./src/index.js`, wherever it sits in an exports map. */
const toJs = (value) =>
  typeof value === 'string'
    ? value.replace(/\.ts$/, '.js')
    : value && typeof value === 'object'
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJs(v)]))
      : value;

async function compilePackage(dir) {
  const rel = path.relative(ROOT, dir);
  const entryPoints = [];
  for await (const file of walk(dir)) {
    const name = path.basename(file);
    const inSrc = path.relative(dir, file).split(path.sep)[0] === 'src';
    if (inSrc && name.endsWith('.ts')) {
      if (!isTest(name)) entryPoints.push(file);
    } else if (!name.endsWith('.ts') && !/\/(native|bench|scripts)\//.test(file) && (!/\/build\//.test(file) || name.endsWith('.node'))) {
      // Run-time files: the dashboard's assets, the native addon (build/Release/*.node), READMEs.
      await cp(file, path.join(OUT, path.relative(ROOT, file)));
    }
  }
  if (entryPoints.length > 0) {
    await build({ entryPoints, outdir: path.join(OUT, rel), outbase: dir, format: 'esm', platform: 'node', target: 'node20', sourcemap: 'linked', logLevel: 'warning' });
  }
  const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
  if (pkg.exports) pkg.exports = toJs(pkg.exports);
  await writeFile(path.join(OUT, rel, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  return entryPoints.length;
}

await rm(OUT, { recursive: true, force: true });
await mkdir(OUT, { recursive: true });
const rootPkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
let files = 0;
for (const pattern of rootPkg.workspaces) {
  const parent = path.join(ROOT, pattern.replace(/\/\*$/, ''));
  for (const entry of await readdir(parent, { withFileTypes: true })) {
    // Only npm packages (libs/python-client is not one).
    if (entry.isDirectory() && existsSync(path.join(parent, entry.name, 'package.json'))) files += await compilePackage(path.join(parent, entry.name));
  }
}
for (const item of ['package.json', 'package-lock.json', 'prisma', 'proto']) await cp(path.join(ROOT, item), path.join(OUT, item), { recursive: true });
console.log(JSON.stringify({ out: OUT, compiled_files: files }));
