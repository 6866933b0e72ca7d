import { Worker } from 'node:worker_threads';
import type { ExportOutputName } from '@moco/contracts';
import type { Preprocessing } from '@moco/moco/export';
import { siblingEntry } from '@moco/service';

const ENTRY = siblingEntry(import.meta.url, 'export-thread');

export interface ConversionRequest {
  state: Uint8Array;
  format: 'onnx' | 'pytorch';
  output: ExportOutputName;
  preprocessing: Preprocessing;
}

/**
 * Converts a training state in a thread of its own: a ResNet-50's conversion is seconds of CPU that
 * would otherwise stall every request the API is answering. The state's memory moves to the thread.
 */
export function convertInThread(request: ConversionRequest): Promise<Uint8Array> {
  // A Buffer may be a view of a shared pool: only a buffer of its own can move.
  const { state } = request;
  const own = state.byteOffset === 0 && state.byteLength === state.buffer.byteLength ? state : new Uint8Array(state);
  return new Promise((resolve, reject) => {
    const worker = new Worker(ENTRY.threadBoot, {
      eval: true,
      workerData: { ...request, state: own },
      name: 'checkpoint-export',
      transferList: [own.buffer as ArrayBuffer],
    });
    let result: Uint8Array | undefined;
    worker.once('message', (bytes: Uint8Array) => {
      result = bytes;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (result) resolve(result);
      else reject(new Error(`the export thread ended (exit code ${code}) without a result`));
    });
  });
}
