export { createObjectStore, type ObjectStoreConfig } from './create-store.js';
export { deleteOrphans, removeStalePartials, type OrphanSweep } from './orphan-sweep.js';
export { LocalFolderStore } from './local-store.js';
export {
  ObjectNotFoundError,
  validateKey,
  validatePrefix,
  type ListedObject,
  type ObjectInfo,
  type ObjectStore,
  type PutBody,
  type PutOptions,
  type PutResult,
} from './object-store.js';
export { parseS3Uri, S3Store, type ChecksumMode, type S3StoreOptions } from './s3-store.js';
export { startTestS3Server, type TestS3Server } from './test-s3-server.js';
