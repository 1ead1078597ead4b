import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  AtomicFileWriter,
  CllamaError,
  copyFileAtomic,
  errorLine,
  FolderExistsError,
  fsErrorReason,
  refuseSpecialFile,
  WriteError,
  writeFileAtomic,
  writeFileAtomicSync,
  writeFolderAtomic,
} from '../src/index.js';
import { skipTmpfsTests, withTmpfs } from './helpers/disk-full.js';

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

describe('a write that cannot complete (disk full, short writes)', () => {
  const big = 'x'.repeat(200_000); // larger than the 64 KiB tmpfs
  const leftovers = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('.'));

  it.skipIf(skipTmpfsTests)('on a full tmpfs every writer fails with one WriteError naming the target, keeps the old file and leaves nothing', async () => {
    await withTmpfs(64, async (dir) => {
      const f = path.join(dir, 'out.txt');
      await writeFileAtomic(f, 'old');
      const source = path.join(work, 'big-source.txt');
      await fs.writeFile(source, big);
      const attempts: Array<[string, () => Promise<unknown>]> = [
        ['text', () => writeFileAtomic(f, big)],
        [
          'handle',
          () =>
            writeFileAtomic(f, async (h) => {
              for (let i = 0; i < 20; i++) await h.write(Buffer.from(big.slice(0, 10_000)));
            }),
        ],
        ['sync', async () => writeFileAtomicSync(f, big)],
        ['copy', () => copyFileAtomic(source, f)],
        [
          'streamed',
          async () => {
            const w = await AtomicFileWriter.create(f, { flushBytes: 1000 });
            try {
              for (let i = 0; i < 200; i++) await w.write(big.slice(0, 1000));
              await w.commit();
            } catch (err) {
              await w.abort();
              throw err;
            }
          },
        ],
      ];
      for (const [what, attempt] of attempts) {
        const err = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, what).toBeInstanceOf(WriteError);
        expect((err as Error).message, what).toBe(`cannot write ${f}: no space left on device (ENOSPC)`);
        expect(readFileSync(f, 'utf8'), what).toBe('old');
        expect(leftovers(dir), what).toEqual([]);
      }
      // a folder: the error names the file inside the target folder, never the temporary folder
      const out = path.join(dir, 'model');
      for (const fill of [{ 'config.json': '{}', 'weights.bin': big }, async (tmp: string) => writeFileAtomic(path.join(tmp, 'weights.bin'), big)]) {
        const err = await writeFolderAtomic(out, fill).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WriteError);
        expect((err as Error).message).toBe(`cannot write ${path.join(out, 'weights.bin')}: no space left on device (ENOSPC)`);
        expect(readdirSync(dir).sort()).toEqual(['out.txt']);
      }
      // a raw write error inside a fill (the caller's own handle) still names the target folder
      const err = await writeFolderAtomic(out, async (tmp) => {
        const h = await fs.open(path.join(tmp, 'raw.bin'), 'w');
        try {
          await h.writeFile(big);
        } finally {
          await h.close();
        }
      }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(new RegExp(`^cannot write ${out}(/raw\\.bin)?: no space left on device \\(ENOSPC\\)$`));
      expect(readdirSync(dir).sort()).toEqual(['out.txt']);
    });
  });

  it('a short write followed by ENOSPC (injected) is an error naming the target, not a torn file', async () => {
    const f = path.join(work, 'short.jsonl');
    await writeFileAtomic(f, 'old\n');
    const realOpen = fs.open;
    const spy = vi.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
      const h = await realOpen(...args);
      if (!String(args[0]).includes('.short.jsonl.tmp-')) return h;
      let calls = 0;
      const realWrite = h.write.bind(h) as (b: Uint8Array, o: number, l: number, p: number | null) => Promise<{ bytesWritten: number }>;
      // the disk takes 10 bytes of the first write, then is full: how write(2) behaves on a full disk
      (h as unknown as { write: unknown }).write = async (b: Uint8Array, o = 0, l = b.length - o, p: number | null = null) => {
        if (calls++ === 0) return realWrite(b, o, Math.min(l, 10), p);
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      };
      return h;
    });
    try {
      for (const attempt of [
        () => writeFileAtomic(f, 'a'.repeat(100)),
        async () => {
          const w = await AtomicFileWriter.create(f);
          await w.write('b'.repeat(100));
          await w.commit().catch(async (e: unknown) => {
            await w.abort();
            throw e;
          });
        },
      ]) {
        const err = await attempt().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WriteError);
        expect(errorLine(err)).toBe(`cannot write ${f}: no space left on device (ENOSPC)`);
        expect(readFileSync(f, 'utf8')).toBe('old\n');
        expect(leftovers(work)).toEqual([]);
      }
    } finally {
      spy.mockRestore();
    }
  });

  it('the size check refuses a temp file whose bytes on disk differ from the bytes handed over', async () => {
    const f = path.join(work, 'sized.bin');
    const tempOf = () => path.join(work, readdirSync(work).find((n) => n.startsWith('.sized.bin.tmp-'))!);
    const err = await writeFileAtomic(f, async (h) => {
      await h.write(Buffer.from('0123456789'));
      await fs.truncate(tempOf(), 4); // what a lost write leaves behind
    }).catch((e: unknown) => e);
    expect(errorLine(err)).toBe(`cannot write ${f}: only 4 of 10 bytes reached the disk (is it full?); nothing was written`);
    const w = await AtomicFileWriter.create(f);
    await w.write('0123456789');
    await w.flush();
    await fs.truncate(w.tempPath, 3);
    await expect(w.commit()).rejects.toThrow(`cannot write ${f}: only 3 of 10 bytes reached the disk`);
    await w.abort();
    expect(existsSync(f)).toBe(false);
    expect(leftovers(work)).toEqual([]);
  });

  it('the handle given to a callback writes fully and models positional writes and truncation', async () => {
    const f = path.join(work, 'positional.bin');
    await writeFileAtomic(f, async (h) => {
      await h.write('abcdef');
      await h.write(Buffer.from('XY'), 0, 2, 1);
      await h.write(Buffer.from('tail'), 0, 4, 10);
      await h.truncate(12);
      await h.writev([Buffer.from('!')], 12);
    });
    expect(readFileSync(f)).toEqual(Buffer.from('aXYdef\0\0\0\0ta!'));
  });

  it('raw errors name the target, and a write error about another file is left as it is', async () => {
    const missing = path.join(work, 'no-such-folder', 'out.txt');
    await expect(writeFileAtomic(missing, 'x')).rejects.toThrow(`cannot write ${missing}: no such file or directory (ENOENT)`);
    await expect(AtomicFileWriter.create(missing)).rejects.toThrow(`cannot write ${missing}: no such file or directory (ENOENT)`);
    const err = await copyFileAtomic(path.join(work, 'no-such-source'), path.join(work, 'copy.txt')).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(WriteError);
    expect(errorLine(err)).toMatch(/no-such-source/);
    expect(fsErrorReason(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }))).toBe('i/o error (EIO)');
  });
});

describe('refuseSpecialFile', () => {
  it('refuses a FIFO without blocking, lets files, folders and missing paths through', async () => {
    const fifo = path.join(work, 'model.safetensors');
    execFileSync('mkfifo', [fifo]);
    await expect(refuseSpecialFile(fifo)).rejects.toThrow(`${fifo} is a FIFO (named pipe), not a regular file`);
    await refuseSpecialFile(path.join(work, 'nothing-here'));
    await refuseSpecialFile(work);
    await fs.writeFile(path.join(work, 'plain'), 'p');
    await refuseSpecialFile(path.join(work, 'plain'));
    rmSync(fifo);
  });
});
