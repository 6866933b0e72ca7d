import { fashionMnistEnv, loadConfig } from '@moco/config';
import { findFashionMnist, loadFashionMnist, type FashionMnistSource, type ImageDataset } from '@moco/data';
import { z } from 'zod';

export interface DemoData {
  source: FashionMnistSource;
  train: ImageDataset;
  test: ImageDataset;
}

/**
 * The demo's Fashion-MNIST images: the first `train` training and `test` test images of the full set
 * where it is installed (FASHION_MNIST_DIR, default Debian's folder), else of the subset shipped with
 * the repository, so the demo runs on a machine with only Node, PostgreSQL and Redis.
 */
export async function loadDemoData(counts: { train: number; test: number }, env: NodeJS.ProcessEnv = process.env): Promise<DemoData> {
  const { FASHION_MNIST_DIR } = loadConfig(z.object(fashionMnistEnv), env);
  const source = await findFashionMnist(FASHION_MNIST_DIR);
  const load = async (split: 'train' | 'test') => {
    const ds = await loadFashionMnist(split, { limit: counts[split], dir: source.dir });
    if (ds.count < counts[split]) {
      throw new Error(`--${split}-images ${counts[split]}: ${source.description}, which has ${ds.count}; install the full set for more`);
    }
    return ds;
  };
  return { source, train: await load('train'), test: await load('test') };
}
