// Types only: decoding (which the exporters use) must not load tfjs.
import type * as tf from './tf.js';

/**
 * A small self-describing container for named float32 tensors plus a JSON header:
 *
 *   bytes 0-7    ASCII magic "MOCOTENS"
 *   bytes 8-11   uint32 LE container version (1)
 *   bytes 12-15  uint32 LE header length H in bytes
 *   bytes 16..   H bytes of UTF-8 JSON: { ...meta, tensors: [{ name, shape, offset }] }
 *                (offset in float32 elements from the start of the data section)
 *   then zero padding to a multiple of 4 bytes, then the float32 LE data of every tensor, in order.
 *
 * Plain bytes, so a checkpoint goes to any object store or file, and Python reads it with
 * numpy.frombuffer after parsing the header.
 */
const MAGIC = 'MOCOTENS';
const VERSION = 1;

export interface TensorEntry {
  name: string;
  shape: number[];
  offset: number;
}

export async function encodeTensors(meta: Record<string, unknown>, tensors: Map<string, tf.Tensor>): Promise<Uint8Array> {
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    entries.push({ name, shape: t.shape, offset });
    offset += t.size;
  }
  const header = new TextEncoder().encode(JSON.stringify({ ...meta, tensors: entries }));
  const dataStart = align4(16 + header.length);
  const bytes = new Uint8Array(dataStart + offset * 4);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, header.length, true);
  bytes.set(header, 16);
  const data = new Float32Array(bytes.buffer, dataStart, offset);
  let i = 0;
  for (const t of tensors.values()) {
    data.set(await t.data<'float32'>(), entries[i++]!.offset);
  }
  return bytes;
}

export interface DecodedTensors<M> {
  meta: M;
  /** Raw values by name; callers make tensors of the ones they need. */
  values: Map<string, { shape: number[]; data: Float32Array }>;
}

export function decodeTensors<M>(bytes: Uint8Array): DecodedTensors<M> {
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw new Error('not a MoCo tensor file (bad magic)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== VERSION) throw new Error(`unsupported MoCo tensor file version ${version}`);
  const headerLength = view.getUint32(12, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + headerLength))) as M & {
    tensors: TensorEntry[];
  };
  const dataStart = align4(16 + headerLength);
  // Copy so the data is aligned whatever the caller's buffer offset is. Not `bytes.slice`: on a Node
  // Buffer it shares memory, and `.buffer` would then be the whole pool.
  const data = new Float32Array(Uint8Array.prototype.slice.call(bytes, dataStart).buffer);
  const values = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of header.tensors) {
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (e.offset + size > data.length) throw new Error(`tensor ${e.name} runs past the end of the file`);
    values.set(e.name, { shape: e.shape, data: data.subarray(e.offset, e.offset + size) });
  }
  const { tensors: _entries, ...meta } = header;
  return { meta: meta as unknown as M, values };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
