import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { idxArchive } from './archive-writer.js';
import { loadFashionMnist } from './fashion-mnist.js';
import { readDataset } from './read-dataset.js';
import { useTempDir, writeBytes } from './test-fixtures.js';

describe('idxArchive', () => {
  const dir = useTempDir();

  it('round-trips a labelled dataset through readDataset', async () => {
    const ds = await loadFashionMnist('test', { limit: 50 });
    const file = await writeBytes(join(dir.path, 'subset.tar'), await idxArchive(ds, 't10k'));
    const back = await readDataset(file, { split: 'test' });
    expect([back.count, back.height, back.width, back.channels]).toEqual([50, 28, 28, 1]);
    expect(Buffer.from(back.pixels).equals(Buffer.from(ds.pixels))).toBe(true);
    expect(Array.from(back.labels!)).toEqual(Array.from(ds.labels!));
  });

  it('refuses colour images', async () => {
    await expect(idxArchive({ count: 1, height: 1, width: 1, channels: 3, pixels: new Uint8Array(3) })).rejects.toThrow(/1-channel/);
  });
});
