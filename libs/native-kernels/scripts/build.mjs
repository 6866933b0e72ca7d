// Builds the optional oneDNN addon. Never fails the install: without libdnnl-dev or a C++ toolchain
// it prints a warning and exits 0, and the project keeps using the wasm backend.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const verbose = process.argv.includes('--verbose');
const warn = (why) => {
  console.warn(`@moco/native-kernels: native oneDNN kernels not built (${why}); the 'native' backend will be unavailable and training falls back to wasm.`);
  process.exit(0);
};

if (process.env.MOCO_SKIP_NATIVE === '1') warn('MOCO_SKIP_NATIVE=1');
if (process.platform !== 'linux') warn(`platform ${process.platform} is not supported yet`);
if (!['/usr/include/oneapi/dnnl/dnnl.hpp', '/usr/local/include/oneapi/dnnl/dnnl.hpp'].some((p) => existsSync(p))) {
  warn('oneDNN headers not found: apt-get install libdnnl-dev');
}
let gyp;
try {
  gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
} catch {
  // npm bundles node-gyp next to itself.
  const npmGyp = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(npmGyp)) gyp = npmGyp;
}
if (!gyp) warn('node-gyp not found');
const args = [gyp, 'rebuild'];
// Use the running node's own headers (Debian's nodejs: /usr/include/node; the node images:
// /usr/local/include/node) rather than downloading them, which needs nodejs.org.
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: verbose ? 'inherit' : 'pipe', encoding: 'utf8' });
if (r.status !== 0) {
  if (!verbose) process.stderr.write(String(r.stderr ?? '').split('\n').slice(-15).join('\n') + '\n');
  warn(`node-gyp exited with ${r.status ?? r.signal}`);
}
console.log('@moco/native-kernels: built build/Release/moco_native.node');
