import { littleEndianBytes, readEncoderWeights, type Preprocessing } from './encoder-weights.js';
import { OrderedDict, pickle, TensorRef, type PickleValue } from './pickle.js';
import { zipStore } from './zip-store.js';

/**
 * The query encoder of a training state (saveTrainingState bytes) as a file torch.load reads, in
 * facebookresearch/moco's checkpoint layout: `state_dict` with `module.encoder_q.<torchvision name>`
 * keys (BN running statistics and `num_batches_tracked` included, the projection head as `fc` or
 * `fc.0`/`fc.2`), `arch`, `epoch`, plus `step`, `encoder` (stem, width, head...) and `preprocessing`.
 * The format is torch.save's: a zip of `archive/data.pkl` (pickle protocol 2), one record
 * `archive/data/<n>` per tensor, and `archive/version`.
 */
export function exportPytorch(stateBytes: Uint8Array, opts: { preprocessing: Preprocessing }): Uint8Array {
  const w = readEncoderWeights(stateBytes);
  const records: { name: string; data: Uint8Array }[] = [];
  const stateDict: [string, PickleValue][] = [];
  const add = (name: string, dtype: 'float32' | 'int64', shape: number[], data: Uint8Array) => {
    const key = String(records.length);
    records.push({ name: `archive/data/${key}`, data });
    stateDict.push([`module.encoder_q.${name}`, new TensorRef(key, dtype, shape)]);
  };
  for (const [name, t] of w.tensors) {
    add(name, 'float32', t.shape, littleEndianBytes(t.data));
    // torchvision's BatchNorm2d has this buffer too; strict loading expects it.
    if (name.endsWith('.running_var')) {
      const count = new Uint8Array(8);
      new DataView(count.buffer).setBigInt64(0, BigInt(w.progress.step), true);
      add(name.replace(/running_var$/, 'num_batches_tracked'), 'int64', [], count);
    }
  }
  const { config: c, progress } = w;
  const checkpoint: PickleValue = {
    arch: c.arch,
    epoch: progress.epoch,
    step: progress.step,
    state_dict: new OrderedDict(stateDict),
    encoder: { arch: c.arch, stem: c.stem, width: c.width, in_channels: c.inChannels, head: c.head, dim: c.dim, bn_eps: c.bnEps },
    // Fields in a fixed order, so the same checkpoint always exports to the same bytes.
    preprocessing: { size: opts.preprocessing.size, channels: opts.preprocessing.channels, mean: opts.preprocessing.mean, std: opts.preprocessing.std },
  };
  return zipStore([
    { name: 'archive/data.pkl', data: pickle(checkpoint) },
    ...records,
    { name: 'archive/version', data: new TextEncoder().encode('3\n') },
  ]);
}
