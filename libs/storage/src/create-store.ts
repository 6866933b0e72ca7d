import type { ObjectStoreConfig } from '@moco/contracts';
import { LocalFolderStore } from './local-store.js';
import type { ObjectStore } from './object-store.js';
import { S3Store } from './s3-store.js';

// The shape is a contract: the worker hands it to its trainer processes.
export type { ObjectStoreConfig };

export function createObjectStore(config: ObjectStoreConfig): ObjectStore {
  switch (config.kind) {
    case 'local':
      return new LocalFolderStore(config.root);
    case 's3':
      return new S3Store(config);
  }
}
