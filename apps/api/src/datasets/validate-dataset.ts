import { fork, type ChildProcess } from 'node:child_process';
import { DatasetValidationResult, type DatasetValidationRequest } from '@moco/contracts';
import { siblingEntry } from '@moco/service';

const CHILD = siblingEntry(import.meta.url, 'validation-child');

export type DatasetValidator = ReturnType<typeof createDatasetValidator>;

/**
 * Validates spooled dataset files, each in a child process of its own: the API's memory stays flat
 * whatever a file decompresses and decodes to, all of a validation's memory goes back when its
 * process exits, and one that crashes (or is killed for memory) fails one request, not the API.
 * A spare child is started ahead of need, which hides the seconds a process takes to load.
 */
export function createDatasetValidator() {
  let spare: ChildProcess | null = null;

  function start(): ChildProcess {
    const child = fork(CHILD.path, [], { execArgv: CHILD.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // A waiting spare must not keep the API (or a test) alive; it exits when the API does.
    child.unref();
    child.channel?.unref();
    child.on('error', () => undefined);
    return child;
  }

  function take(): ChildProcess {
    const ready = spare?.connected ? spare : start();
    spare = start();
    return ready;
  }

  return {
    validate(request: DatasetValidationRequest): Promise<DatasetValidationResult> {
      const child = take();
      return new Promise((resolve, reject) => {
        let answer: unknown;
        child.once('message', (message) => {
          answer = message;
        });
        // 'close' follows the exit and every message the child sent.
        child.once('close', (code, signal) => {
          if (answer === undefined) reject(new Error(`the dataset validation process ended (${signal ?? `exit code ${code}`}) without a result`));
          else resolve(DatasetValidationResult.parse(answer));
        });
        child.send(request, (err) => {
          if (err) reject(err);
        });
      });
    },

    close(): void {
      spare?.kill();
      spare = null;
    },
  };
}
