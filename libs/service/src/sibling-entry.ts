import { fileURLToPath } from 'node:url';

/**
 * A module beside the caller, to start as a child process or a worker thread the way the caller itself
 * runs: from TypeScript source under tsx in development and tests, or from the compiled JavaScript
 * (`npm run build`, the production image), where tsx is not installed.
 */
export interface SiblingEntry {
  /** The module's file (`.ts` or `.js`, as the caller's). */
  path: string;
  /** Node arguments a child process needs to run it (tsx's loader for TypeScript). */
  execArgv: string[];
  /** Code for `new Worker(code, { eval: true })`: on Node 20 a thread neither inherits tsx's hooks nor honours `--import`, so TypeScript registers them first. */
  threadBoot: string;
}

export function siblingEntry(callerUrl: string, name: string): SiblingEntry {
  const typescript = callerUrl.endsWith('.ts');
  const url = new URL(`./${name}${typescript ? '.ts' : '.js'}`, callerUrl);
  if (!typescript) {
    return { path: fileURLToPath(url), execArgv: [], threadBoot: `import(${JSON.stringify(url.href)});` };
  }
  // Resolved from here, so the child finds tsx whatever its working directory.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  return {
    path: fileURLToPath(url),
    execArgv: ['--import', import.meta.resolve('tsx')],
    threadBoot: `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`,
  };
}
