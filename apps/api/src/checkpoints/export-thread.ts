// A conversion thread (started by convert-in-thread.ts): a checkpoint's training state in, an export out.
import { parentPort, workerData } from 'node:worker_threads';
import { exportOnnx, exportPytorch } from '@moco/moco/export';
import type { ConversionRequest } from './convert-in-thread.js';

const { state, format, output, preprocessing } = workerData as ConversionRequest;
const bytes = format === 'onnx' ? exportOnnx(state, { output, preprocessing }) : exportPytorch(state, { preprocessing });
parentPort!.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
