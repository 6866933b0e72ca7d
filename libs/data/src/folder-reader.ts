import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DatasetError, errorMessage } from './dataset-errors.js';
import { diskFile, isJunkName, type TreeFile } from './file-tree.js';

/** Lists the files under `root` (junk skipped), to be read lazily. Symlinked files are followed, symlinked folders not (no cycles). */
export async function listFolder(root: string, limits: { maxFiles: number; maxBytes: number }): Promise<TreeFile[]> {
  const files: TreeFile[] = [];
  let seen = 0;
  async function walk(dir: string, prefix: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      throw new DatasetError('unreadable_file', dir, errorMessage(err), { cause: err });
    }
    for (const entry of entries) {
      seen += 1;
      if (seen > limits.maxFiles) throw new DatasetError('too_many_files', root, `more than ${limits.maxFiles} files`);
      if (isJunkName(entry.name)) continue;
      const file = join(dir, entry.name);
      const path = prefix + entry.name;
      if (entry.isDirectory()) await walk(file, `${path}/`);
      else if (entry.isFile() || (entry.isSymbolicLink() && (await isFile(file)))) files.push(diskFile(file, path, limits.maxBytes));
    }
  }
  await walk(root, '');
  return files;
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then((s) => s.isFile(), () => false);
}
