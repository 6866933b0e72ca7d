import { LocalFolderStore } from './local-store.js';
import type { ObjectStore } from './object-store.js';
import { S3Store, type S3StoreOptions } from './s3-store.js';

export type ObjectStoreConfig = { kind: 'local'; root: string } | ({ kind: 's3' } & S3StoreOptions);

export function createObjectStore(config: ObjectStoreConfig): ObjectStore {
  switch (config.kind) {
    case 'local':
      return new LocalFolderStore(config.root);
    case 's3':
      return new S3Store(config);
  }
}
