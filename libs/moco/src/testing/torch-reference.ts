import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Where the PyTorch reference scripts live (libs/moco/reference). */
export const referenceDir = fileURLToPath(new URL('../../reference/', import.meta.url));

/**
 * The Python that has torch: MOCO_TORCH_PYTHON, else Debian's /usr/bin/python3 (python3-torch), else
 * python3 on PATH. Returns null with the reason when none imports torch, so tests can say why they skip.
 */
export function findTorchPython(): { python: string | null; reason: string } {
  return findPython('torch, torchvision', 'apt-get install python3-torch python3-torchvision, or set MOCO_TORCH_PYTHON');
}

/** The first of those Pythons that imports `modules` (a comma-separated import list), or null with the reason. */
export function findPython(modules: string, hint: string): { python: string | null; reason: string } {
  const candidates = [process.env.MOCO_TORCH_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[];
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', `import ${modules}`], { encoding: 'utf8' });
    if (probe.status === 0) return { python, reason: '' };
  }
  return { python: null, reason: `no python with ${modules} among ${candidates.join(', ')} (${hint})` };
}

export function runReference(python: string, script: string, args: string[]): string {
  return execFileSync(python, [referenceDir + script, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
}
