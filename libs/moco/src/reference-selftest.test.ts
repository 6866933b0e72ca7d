import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { findTorchPython, referenceDir } from './testing/torch-reference.js';

// The PyTorch reference is itself checked against hand computations (split BN, un-shuffle, queue,
// SGD), so a parity failure points at our side, not at a reference bug.
const torch = findTorchPython();

describe.runIf(torch.python)('PyTorch reference', () => {
  it('passes its own self-checks', () => {
    const run = spawnSync(torch.python!, ['-m', 'unittest', 'discover', '-s', referenceDir, '-p', 'test_*.py'], {
      encoding: 'utf8',
    });
    expect(run.status, run.stderr.slice(-4000)).toBe(0);
    // About 80 s on an idle 2-core machine; minutes when the suite's other files share the cores.
  }, 420_000);
});
