/**
 * Atomic folder write: the files go into a fresh temp folder beside the target (same file system),
 * each one fsynced, the folder fsynced, then renamed into place. On any error the temp folder is
 * removed and the target is as it was. An existing non-empty target is refused unless `force`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TokenizerMergeError } from './proto.js';

export class OutputExistsError extends TokenizerMergeError {
  override name = 'OutputExistsError';
}

export async function writeFolderAtomic(
  outDir: string,
  files: Record<string, Uint8Array | string>,
  options: { force?: boolean } = {},
): Promise<void> {
  const target = path.resolve(outDir);
  const parent = path.dirname(target);
  const existing = await folderState(target);
  if (existing === 'file') {
    throw new OutputExistsError(`${outDir} exists and is a file; choose another --out folder`);
  }
  if (existing === 'non-empty' && !options.force) {
    throw new OutputExistsError(`${outDir} exists and is not empty; choose another --out folder or pass --force to replace it`);
  }
  try {
    await fs.mkdir(parent, { recursive: true });
  } catch (err) {
    throw new TokenizerMergeError(`cannot create ${parent}: ${(err as Error).message}`);
  }
  const temp = await fs.mkdtemp(path.join(parent, `.${path.basename(target)}.tmp-`));
  let old: string | undefined;
  try {
    // mkdtemp makes the folder private (0700); give it the permissions a plain mkdir would have.
    await fs.chmod(temp, 0o777 & ~process.umask());
    for (const [name, content] of Object.entries(files)) {
      const handle = await fs.open(path.join(temp, name), 'w');
      try {
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    await syncDir(temp);
    if (existing === 'empty') {
      await fs.rmdir(target);
    } else if (existing === 'non-empty') {
      old = `${temp}.old`;
      await fs.rename(target, old);
    }
    await fs.rename(temp, target);
    await syncDir(parent);
  } catch (err) {
    await fs.rm(temp, { recursive: true, force: true });
    if (old) await fs.rename(old, target).catch(() => {});
    throw err;
  }
  if (old) await fs.rm(old, { recursive: true, force: true });
}

async function folderState(dir: string): Promise<'missing' | 'empty' | 'non-empty' | 'file'> {
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch {
    return 'missing';
  }
  if (!stat.isDirectory()) return 'file';
  return (await fs.readdir(dir)).length === 0 ? 'empty' : 'non-empty';
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems do not support fsync on directories; the rename is still atomic.
  } finally {
    await handle.close();
  }
}
