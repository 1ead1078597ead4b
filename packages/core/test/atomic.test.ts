import { promises as fs, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AtomicFileWriter, CllamaError, copyFileAtomic, FolderExistsError, writeFileAtomic, writeFileAtomicSync, writeFolderAtomic } from '../src/index.js';

const work = mkdtempSync(path.join(tmpdir(), 'cllama-core-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('atomic files', () => {
  it('writes text, bytes and through a handle, leaving no temporary file', async () => {
    const f = path.join(work, 'a.txt');
    await writeFileAtomic(f, 'one');
    expect(readFileSync(f, 'utf8')).toBe('one');
    await writeFileAtomic(f, new Uint8Array([50, 51]));
    expect(readFileSync(f, 'utf8')).toBe('23');
    await writeFileAtomic(f, async (h) => {
      await h.write('via handle');
    });
    expect(readFileSync(f, 'utf8')).toBe('via handle');
    writeFileAtomicSync(f, 'sync');
    expect(readFileSync(f, 'utf8')).toBe('sync');
    await copyFileAtomic(f, path.join(work, 'b.txt'));
    expect(readFileSync(path.join(work, 'b.txt'), 'utf8')).toBe('sync');
    expect(readdirSync(work).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('refuses a folder as a file target before writing', async () => {
    const dir = path.join(work, 'a-folder');
    await fs.mkdir(dir);
    await expect(writeFileAtomic(dir, 'x')).rejects.toThrow(/a-folder is a folder; give a file path/);
    await expect(AtomicFileWriter.create(dir)).rejects.toBeInstanceOf(CllamaError);
    expect(readdirSync(work).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('keeps the old file when the writer fails', async () => {
    const f = path.join(work, 'keep.txt');
    await writeFileAtomic(f, 'old');
    await expect(
      writeFileAtomic(f, async (h) => {
        await h.write('half');
        throw new Error('disk on fire');
      }),
    ).rejects.toThrow('disk on fire');
    expect(readFileSync(f, 'utf8')).toBe('old');
    expect(readdirSync(work).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('AtomicFileWriter appends, patches, commits or aborts', async () => {
    const f = path.join(work, 'w.bin');
    const w = await AtomicFileWriter.create(f, { flushBytes: 4 });
    await w.write('abcdef');
    await w.write(new Uint8Array([103]));
    await w.writeAt(0, new Uint8Array([65]));
    expect(w.bytes).toBe(7);
    await w.commit();
    expect(readFileSync(f, 'utf8')).toBe('Abcdefg');
    const w2 = await AtomicFileWriter.create(f);
    await w2.write('zzz');
    await w2.abort();
    await w2.abort();
    expect(readFileSync(f, 'utf8')).toBe('Abcdefg');
  });
});

describe('writeFolderAtomic', () => {
  const fill = (text: string) => async (dir: string) => fs.writeFile(path.join(dir, 'x.txt'), text);

  it('creates parents, refuses a non-empty folder unless force, replaces with force', async () => {
    const dir = path.join(work, 'deep', 'out');
    await writeFolderAtomic(dir, fill('1'));
    expect(readFileSync(path.join(dir, 'x.txt'), 'utf8')).toBe('1');
    const err = await writeFolderAtomic(dir, fill('2')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FolderExistsError);
    expect(err).toBeInstanceOf(CllamaError);
    expect((err as Error).message).toMatch(/out exists and is not empty.*--force/);
    await writeFolderAtomic(dir, fill('3'), { force: true });
    expect(readFileSync(path.join(dir, 'x.txt'), 'utf8')).toBe('3');
    expect(readdirSync(path.dirname(dir))).toEqual(['out']);
    await writeFolderAtomic(dir, { 'a.json': '{}', 'b.bin': new Uint8Array([1, 2]) }, { force: true });
    expect(readdirSync(dir).sort()).toEqual(['a.json', 'b.bin']);
  });

  it('replaces an empty folder, refuses a file, and leaves nothing when fill fails', async () => {
    const dir = path.join(work, 'empty');
    await fs.mkdir(dir);
    await writeFolderAtomic(dir, fill('e'));
    expect(readdirSync(dir)).toEqual(['x.txt']);
    const file = path.join(work, 'a-file');
    await fs.writeFile(file, 'f');
    await expect(writeFolderAtomic(file, fill('x'), { force: true })).rejects.toThrow(/is a file/);
    await expect(
      writeFolderAtomic(
        dir,
        async () => {
          throw new Error('boom');
        },
        { force: true },
      ),
    ).rejects.toThrow('boom');
    expect(readFileSync(path.join(dir, 'x.txt'), 'utf8')).toBe('e');
    expect(readdirSync(work).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
