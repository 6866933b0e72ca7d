import type * as tf from '@tensorflow/tfjs';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** The addon's side of the output arena (native/output_arena.h). */
export interface ArenaAddon {
  /** `values` became a tensor's values: true when it is arena memory, whose block is now held once more. */
  retain(values: ArrayBufferView): boolean;
  /** The tensor holding `values` was disposed: its hold on the block is given back. */
  release(values: ArrayBufferView): boolean;
}

type DataId = object;

/**
 * Ties the lifetime of arena-backed tensor values to tfjs's own reference counting on `backend`: a block
 * is held from the moment its view becomes a tensor's values (`write`, `move`) until that data is
 * disposed (`disposeData`, or the backend's `dispose`), then reused by the next kernel output.
 *
 * A block may be reused as soon as its tensor is disposed, while values read out of the tensor can live
 * on in the caller (`const v = t.dataSync(); t.dispose()` is common): `readSync` (and `read`, which the
 * cpu backend answers with it) therefore returns copies of arena values, as tfjs-node's backend does of
 * its native memory. Kernels read inputs in place (`backend.data.get(id).values`), as before.
 */
export function holdArenaValues(backend: MathBackendCPU, addon: ArenaAddon): void {
  const held = new Set<DataId>();
  const hold = (dataId: DataId, values: unknown): void => {
    if (ArrayBuffer.isView(values) && addon.retain(values)) held.add(dataId);
  };
  const write = backend.write.bind(backend);
  backend.write = (values, shape, dtype) => {
    const dataId = write(values, shape, dtype);
    hold(dataId, values);
    return dataId;
  };
  const move = backend.move.bind(backend);
  backend.move = (dataId, values, shape, dtype, refCount) => {
    move(dataId, values, shape, dtype, refCount);
    hold(dataId, values);
  };
  const readSync = backend.readSync.bind(backend);
  backend.readSync = (dataId) => {
    const values = readSync(dataId);
    return held.has(dataId) ? (values as tf.backend_util.TypedArray).slice() : values;
  };
  const disposeData = backend.disposeData.bind(backend);
  backend.disposeData = (dataId, force) => {
    if (!held.has(dataId)) return disposeData(dataId, force);
    const { values } = backend.data.get(dataId);
    const released = disposeData(dataId, force);
    if (!backend.data.has(dataId)) {
      held.delete(dataId);
      addon.release(values as ArrayBufferView);
    }
    return released;
  };
  const dispose = backend.dispose.bind(backend);
  backend.dispose = () => {
    for (const dataId of held) addon.release(backend.data.get(dataId).values as ArrayBufferView);
    held.clear();
    dispose();
  };
}
