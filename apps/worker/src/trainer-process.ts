import { fork, type ChildProcess } from 'node:child_process';
import { siblingEntry } from '@moco/service';
import { parseChildMessage, type ChildMessage, type ParentMessage, type StartMessage } from '@moco/contracts';

const CHILD = siblingEntry(import.meta.url, 'trainer-child');

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The trainer child of one job: the worker sends it work and stop requests and gets its reports in order. */
export class TrainerProcess {
  readonly closed: Promise<ChildExit>;
  private readonly child: ChildProcess;

  /** `onMalformed`: a message that does not fit the contract (the child is killed: its reports cannot be trusted). */
  constructor(start: StartMessage, onMessage: (message: ChildMessage) => void, onMalformed: (err: Error) => void) {
    this.child = fork(CHILD.path, [], {
      execArgv: CHILD.execArgv,
      // Structured clone rather than JSON: a diverged loss stays NaN instead of becoming null.
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (received) => {
      let message: ChildMessage;
      try {
        message = parseChildMessage(received);
      } catch (err) {
        this.kill();
        return onMalformed(err as Error);
      }
      onMessage(message);
    });
    // 'close' follows the exit and every message the child sent; a failed spawn gives only 'error'.
    this.closed = new Promise((resolve) => {
      this.child.once('close', (code, signal) => resolve({ code, signal }));
      this.child.on('error', () => {
        if (this.child.pid === undefined) resolve({ code: null, signal: null });
      });
    });
    this.send(start);
  }

  /** Asks for a stop between steps (the child saves a checkpoint first); heard once it trains. */
  stop(): void {
    this.send({ type: 'stop' });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private send(message: ParentMessage): void {
    // A child that already exited cannot be told anything; its exit says what happened.
    if (this.child.connected) this.child.send(message, () => {});
  }
}
