// Another process sharing a worker's dataset cache, for dataset-cache.test.ts: pins the dataset
// named in its argument (JSON) and holds it until it is killed.
import { createObjectStore, type ObjectStoreConfig } from '@moco/storage';
import { pinDataset, type DatasetCache } from '../dataset-cache.js';
import type { DatasetLocation } from '@moco/contracts';

const { storage, cache, location } = JSON.parse(process.argv[2]!) as { storage: ObjectStoreConfig; cache: DatasetCache; location: DatasetLocation };
const pinned = await pinDataset(createObjectStore(storage), cache, location);
process.stdout.write(`${pinned.file}\n`);
setInterval(() => {}, 60_000);
