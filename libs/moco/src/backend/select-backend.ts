import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '../tf.js';
import '@tensorflow/tfjs-backend-cpu';
import { getThreadsCount, setWasmPaths, type BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { BACKEND_NAMES, type BackendName } from '../config.js';
import { registerWasmGradientKernels } from './wasm-gradient-kernels.js';

export interface BackendChoice {
  name: BackendName;
  /** What runs it, e.g. '@tensorflow/tfjs-node-gpu' or 'wasm (SIMD, 1 thread)'. */
  detail: string;
  /** Why a preferred backend was not used; empty when the preference was met. */
  warnings: string[];
}

export interface InitBackendOptions {
  /**
   * 'auto' (default): tfjs-node(-gpu) where installed, else 'native' (the tfjs cpu backend with oneDNN
   * kernels from the optional @moco/native-kernels addon) where the addon is built, else wasm, else cpu.
   * Under 'auto' a missing native addon is logged as one warning (with how to build it).
   */
  prefer?: BackendName | 'auto';
  log?: (line: string) => void;
}

const CHAIN: readonly BackendName[] = BACKEND_NAMES;

const NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

class NotInstalled extends Error {}

/** The native addon is not built or cannot load; `reason` says why, `hint` how to build it. */
class NativeUnavailable extends Error {
  constructor(
    readonly reason: string,
    readonly hint: string,
  ) {
    super(`${reason}; build it with '${hint}'`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The package itself is absent (not, say, its native binding, whose path also contains the name). */
function isPackageMissing(error: unknown, specifier: string): boolean {
  const code = (error as { code?: unknown }).code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && messageOf(error).includes(`'${specifier}'`);
}

async function setBackendOrThrow(name: string): Promise<void> {
  // setBackend reports a failed initialisation by resolving false, not by throwing.
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' failed to initialise`);
}

async function startTensorflow(): Promise<string> {
  const failures: string[] = [];
  for (const specifier of NODE_PACKAGES) {
    try {
      // A computed specifier, so TypeScript and bundlers do not require the optional package.
      await import(/* @vite-ignore */ specifier);
    } catch (error) {
      if (!isPackageMissing(error, specifier)) failures.push(`${specifier} is installed but failed to load: ${messageOf(error)}`);
      continue;
    }
    if (tf.findBackendFactory('tensorflow') === null) {
      failures.push(`${specifier} registered its backend with another copy of @tensorflow/tfjs-core`);
      continue;
    }
    await setBackendOrThrow('tensorflow');
    return specifier;
  }
  if (failures.length > 0) throw new Error(failures.join('; '));
  throw new NotInstalled(`neither ${NODE_PACKAGES.join(' nor ')} is installed`);
}

const NATIVE_PACKAGE = '@moco/native-kernels';

/** What we use of @moco/native-kernels (typed here, so this library does not depend on it). */
interface NativeKernels {
  NATIVE_BACKEND: string;
  NATIVE_BUILD_HINT?: string;
  nativeUnavailableReason?(): string | undefined;
  registerNativeBackend(): { detail: string };
}

const NATIVE_BUILD_HINT = 'apt-get install libdnnl-dev g++ make && npm rebuild @moco/native-kernels';

async function startNative(): Promise<string> {
  let native: NativeKernels;
  try {
    // A computed specifier: the workspace is optional (it needs libdnnl and a C++ toolchain to build).
    native = (await import(/* @vite-ignore */ NATIVE_PACKAGE)) as NativeKernels;
  } catch (error) {
    if (isPackageMissing(error, NATIVE_PACKAGE)) throw new NativeUnavailable(`${NATIVE_PACKAGE} is not installed`, `npm install && ${NATIVE_BUILD_HINT}`);
    throw error;
  }
  const reason = native.nativeUnavailableReason?.();
  if (reason) throw new NativeUnavailable(reason, native.NATIVE_BUILD_HINT ?? NATIVE_BUILD_HINT);
  // Throws with the reason (and how to build it) when the addon cannot load.
  const { detail } = native.registerNativeBackend();
  await setBackendOrThrow(native.NATIVE_BACKEND);
  return detail;
}

let wasmPathsSet = false;

async function startWasm(): Promise<string> {
  if (!wasmPathsSet) {
    // In Node the .wasm binaries are read from the package's dist folder; the prefix must end with '/'.
    const entry = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
    setWasmPaths(path.dirname(entry) + path.sep);
    wasmPathsSet = true;
  }
  registerWasmGradientKernels();
  await setBackendOrThrow('wasm');
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const threads = getThreadsCount();
  return `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})`;
}

/** Makes `name` the active backend; throws when it cannot run here. Returns its detail. */
async function start(name: BackendName): Promise<string> {
  switch (name) {
    case 'tensorflow':
      return startTensorflow();
    case 'native':
      return startNative();
    case 'wasm':
      return startWasm();
    case 'cpu':
      await setBackendOrThrow('cpu');
      return 'cpu (pure JS)';
  }
}

/**
 * Picks and activates the tfjs backend. An unsatisfiable preference falls back down
 * tensorflow -> native -> wasm -> cpu with a warning instead of failing. Safe to call more than once.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendChoice> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const warnings: string[] = [];
  let prefer = opts.prefer ?? 'auto';
  // Reachable from untyped input such as a CLI flag.
  if (prefer !== 'auto' && !CHAIN.includes(prefer)) {
    warnings.push(`unknown backend '${String(prefer)}' (expected auto, ${CHAIN.join(', ')}), choosing automatically`);
    prefer = 'auto';
  }
  const chain = CHAIN.slice(prefer === 'auto' ? 0 : CHAIN.indexOf(prefer));
  // Under 'auto' the native addon not being built is worth saying, once it is known what runs instead.
  let nativeMissing: NativeUnavailable | undefined;
  for (const name of chain) {
    try {
      const detail = await start(name);
      if (nativeMissing) {
        const slower = name === 'wasm' ? ', training is about 2x slower' : name === 'cpu' ? ', training is much slower' : '';
        warnings.push(`native oneDNN kernels not built (${nativeMissing.reason}): using ${name}${slower}; ${nativeMissing.hint}`);
      }
      for (const warning of warnings) log(`warning: ${warning}`);
      log(`tfjs backend '${name}': ${detail}`);
      return { name, detail, warnings };
    } catch (error) {
      if (prefer === 'auto' && error instanceof NativeUnavailable) {
        nativeMissing = error;
      } else if (!(prefer === 'auto' && error instanceof NotInstalled)) {
        // Under 'auto' a missing tfjs-node is the normal case on machines without it, not worth a warning.
        warnings.push(`backend '${name}' unavailable (${messageOf(error)}), falling back`);
      }
    }
  }
  if (nativeMissing) warnings.push(`backend 'native' unavailable (${messageOf(nativeMissing)})`);
  throw new Error(`no tfjs backend could start: ${warnings.join('; ')}`);
}

/** Runs `fn` with `name` as the active backend (throwing if it cannot start), then restores the previous one. */
export async function withBackend<T>(name: BackendName, fn: () => T | Promise<T>): Promise<T> {
  const previous = tf.getBackend();
  await start(name);
  try {
    return await fn();
  } finally {
    // null when no backend had been chosen yet.
    if (previous) await tf.setBackend(previous);
  }
}

/**
 * Size of the wasm backend's heap (the backend must be active), which only grows, so this is its
 * peak. 32-bit wasm caps it at 4 GiB whatever the machine has: an 'Aborted()' with this near 4 GiB
 * ran out of memory. (The module's typings omit Emscripten's HEAPU8.)
 */
export function wasmHeapBytes(): number {
  const module = (tf.backend() as BackendWasm).wasm as unknown as { HEAPU8: Uint8Array };
  return module.HEAPU8.length;
}
