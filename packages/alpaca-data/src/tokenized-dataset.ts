/**
 * The tokenized dataset cache shared with the trainer (format version 1; see docs/alpaca-data.md).
 *
 * A folder with
 *   meta.json    {format: "cllama-tokenized-dataset", version: 1, count, numTokens, hasLabels, ...}
 *   tokens.bin   16-byte header + int32 LE token ids of all records, back to back
 *   offsets.bin  16-byte header + (count + 1) uint64 LE token offsets (record i = [off[i], off[i+1]))
 *   labels.bin   16-byte header + one uint8 per token: 1 = trained (label = token id), 0 = ignored
 *                (label -100). Only present when hasLabels; otherwise labels = input ids (pre-training).
 * Each .bin header: 8 ASCII magic bytes, uint32 LE format version, uint32 LE element size in bytes.
 *
 * The folder is written to a temp sibling and renamed into place (atomic). Opening validates the
 * headers, the file sizes against meta.json and the offsets; records are then read on demand by index
 * (positional reads), so a multi-GB dataset costs only 8 bytes of memory per record.
 */
import { closeSync, fstatSync, openSync, promises as fsp, readSync } from 'node:fs';
import { endianness } from 'node:os';
import * as path from 'node:path';
import { AtomicFileWriter, refuseSpecialFile, writeFileAtomic, writeFolderAtomic } from '@cllama/core';
import { TokenizedDatasetError } from './errors.js';
import { IGNORE_INDEX } from './sft.js';

export const TOKENIZED_FORMAT = 'cllama-tokenized-dataset';
export const TOKENIZED_VERSION = 1;
const HEADER_BYTES = 16;
const FILES = {
  tokens: { name: 'tokens.bin', magic: 'CLTOKENS', elementSize: 4 },
  offsets: { name: 'offsets.bin', magic: 'CLOFFSET', elementSize: 8 },
  labels: { name: 'labels.bin', magic: 'CLLABELS', elementSize: 1 },
} as const;
type FileKind = keyof typeof FILES;

/** What the caller describes about the data (free-form, stored under meta.json "info"). */
export interface TokenizedDatasetInfo {
  kind?: 'sft' | 'pt' | string;
  [key: string]: unknown;
}

export interface TokenizedDatasetMeta {
  format: typeof TOKENIZED_FORMAT;
  version: number;
  count: number;
  numTokens: number;
  hasLabels: boolean;
  minLength: number;
  maxLength: number;
  tokenDtype: 'int32-le';
  offsetDtype: 'uint64-le';
  labelEncoding: 'mask-u8' | 'none';
  files: { tokens: string; offsets: string; labels?: string };
  info: TokenizedDatasetInfo;
}

export interface TokenizedRecordInput {
  inputIds: ArrayLike<number>;
  labels?: ArrayLike<number>;
}

export interface TokenizedRecord {
  inputIds: Int32Array;
  labels: Int32Array;
}

function assertLittleEndianHost(): void {
  if (endianness() !== 'LE') throw new TokenizedDatasetError('tokenized datasets are little-endian; this host is big-endian');
}

function header(kind: FileKind): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write(FILES[kind].magic, 0, 'ascii');
  h.writeUInt32LE(TOKENIZED_VERSION, 8);
  h.writeUInt32LE(FILES[kind].elementSize, 12);
  return h;
}

/**
 * Write records to `dir` atomically. `hasLabels` is decided by the first record (all must agree).
 * Labels must be -100 or equal to the token at the same position (the SFT shape); anything else is
 * rejected because the on-disk mask cannot represent it.
 */
export async function writeTokenizedDataset(
  dir: string,
  records: AsyncIterable<TokenizedRecordInput> | Iterable<TokenizedRecordInput>,
  info: TokenizedDatasetInfo = {},
): Promise<TokenizedDatasetMeta> {
  assertLittleEndianHost();
  const target = path.resolve(dir);
  await refuseToClobber(target);
  let meta: TokenizedDatasetMeta | undefined;
  // A previous dataset in `target` (the only non-empty folder refuseToClobber lets through) is replaced.
  await writeFolderAtomic(
    target,
    async (tmpDir) => {
      meta = await writeFiles(tmpDir, records, info);
    },
    { force: true },
  );
  return meta!;
}

async function writeFiles(
  tmpDir: string,
  records: AsyncIterable<TokenizedRecordInput> | Iterable<TokenizedRecordInput>,
  info: TokenizedDatasetInfo,
): Promise<TokenizedDatasetMeta> {
  const writers: Partial<Record<FileKind, AtomicFileWriter>> = {};
  try {
    writers.tokens = await AtomicFileWriter.create(path.join(tmpDir, FILES.tokens.name));
    writers.offsets = await AtomicFileWriter.create(path.join(tmpDir, FILES.offsets.name));
    await writers.tokens.write(header('tokens'));
    await writers.offsets.write(header('offsets'));
    const off = new BigUint64Array(1);
    await writers.offsets.write(new Uint8Array(off.buffer));

    let count = 0;
    let numTokens = 0;
    let minLength = Number.POSITIVE_INFINITY;
    let maxLength = 0;
    let hasLabels: boolean | undefined;
    for await (const rec of records as AsyncIterable<TokenizedRecordInput>) {
      const n = rec.inputIds.length;
      const recHasLabels = rec.labels !== undefined;
      if (hasLabels === undefined) {
        hasLabels = recHasLabels;
        if (hasLabels) {
          writers.labels = await AtomicFileWriter.create(path.join(tmpDir, FILES.labels.name));
          await writers.labels.write(header('labels'));
        }
      } else if (hasLabels !== recHasLabels) {
        throw new TokenizedDatasetError(`record ${count}: ${recHasLabels ? 'has' : 'lacks'} labels unlike record 0; give labels for all records or for none`);
      }
      const ids = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const t = rec.inputIds[i];
        // (t | 0) === t: an integer in int32 range; then not negative.
        if ((t | 0) !== t || t < 0) {
          throw new TokenizedDatasetError(`record ${count}: token ${i} is ${t}, not a non-negative int32 token id`);
        }
        ids[i] = t;
      }
      if (rec.labels !== undefined) {
        if (rec.labels.length !== n) {
          throw new TokenizedDatasetError(`record ${count}: ${n} input ids but ${rec.labels.length} labels`);
        }
        const mask = new Uint8Array(n);
        for (let i = 0; i < n; i++) {
          const l = rec.labels[i];
          if (l === ids[i]) mask[i] = 1;
          else if (l !== IGNORE_INDEX) {
            throw new TokenizedDatasetError(`record ${count}: label ${i} is ${l}; labels must be -100 or equal to the input id at the same position`);
          }
        }
        await writers.labels!.write(mask, true);
      }
      await writers.tokens.write(new Uint8Array(ids.buffer), true);
      numTokens += n;
      off[0] = BigInt(numTokens);
      await writers.offsets.write(new Uint8Array(off.buffer));
      count++;
      minLength = Math.min(minLength, n);
      maxLength = Math.max(maxLength, n);
    }
    const meta: TokenizedDatasetMeta = {
      format: TOKENIZED_FORMAT,
      version: TOKENIZED_VERSION,
      count,
      numTokens,
      hasLabels: hasLabels ?? false,
      minLength: count === 0 ? 0 : minLength,
      maxLength,
      tokenDtype: 'int32-le',
      offsetDtype: 'uint64-le',
      labelEncoding: hasLabels ? 'mask-u8' : 'none',
      files: { tokens: FILES.tokens.name, offsets: FILES.offsets.name, ...(hasLabels ? { labels: FILES.labels.name } : {}) },
      info,
    };
    for (const w of Object.values(writers)) await w!.commit();
    await writeFileAtomic(path.join(tmpDir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    return meta;
  } catch (err) {
    for (const w of Object.values(writers)) await w!.abort();
    throw err;
  }
}

/** Only an absent folder, an empty one, or a previous tokenized dataset may be replaced. */
async function refuseToClobber(target: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fsp.readdir(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new TokenizedDatasetError(`${target} is a file; give a folder path for the tokenized dataset`);
    }
    throw err;
  }
  if (entries.length === 0 || entries.includes('meta.json')) {
    if (entries.length > 0) {
      const meta = await fsp.readFile(path.join(target, 'meta.json'), 'utf8').catch(() => '');
      if (!meta.includes(TOKENIZED_FORMAT)) {
        throw new TokenizedDatasetError(`${target} exists and is not a tokenized dataset; choose another --out folder or remove it`);
      }
    }
    return;
  }
  throw new TokenizedDatasetError(`${target} exists and is not a tokenized dataset; choose another --out folder or remove it`);
}

export interface TokenizedDataset {
  readonly dir: string;
  readonly meta: TokenizedDatasetMeta;
  /** Number of records. */
  readonly length: number;
  /** Token count of record i, without reading it. */
  lengthOf(i: number): number;
  /** Record i: input ids and labels (-100 where not trained; = input ids when the dataset has no labels). */
  get(i: number): TokenizedRecord;
  close(): void;
}

function fail(dir: string, problem: string): never {
  throw new TokenizedDatasetError(`${dir}: ${problem}; re-create it with 'cllama-data tokenize'`);
}

export async function openTokenizedDataset(dir: string): Promise<TokenizedDataset> {
  assertLittleEndianHost();
  const root = path.resolve(dir);
  let metaText: string;
  // a FIFO or device in place of a file would block the reads below forever
  for (const name of ['meta.json', ...Object.values(FILES).map((f) => f.name)]) await refuseSpecialFile(path.join(root, name));
  try {
    metaText = await fsp.readFile(path.join(root, 'meta.json'), 'utf8');
  } catch {
    throw new TokenizedDatasetError(`${root}: no meta.json; this is not a tokenized dataset (create one with 'cllama-data tokenize')`);
  }
  let meta: TokenizedDatasetMeta;
  try {
    meta = JSON.parse(metaText) as TokenizedDatasetMeta;
  } catch {
    return fail(root, 'meta.json is not valid JSON');
  }
  if (meta?.format !== TOKENIZED_FORMAT) fail(root, `meta.json format is ${JSON.stringify(meta?.format)}, expected "${TOKENIZED_FORMAT}"`);
  if (meta.version !== TOKENIZED_VERSION) {
    fail(root, `format version ${meta.version} is not supported (this build reads version ${TOKENIZED_VERSION})`);
  }
  for (const k of ['count', 'numTokens'] as const) {
    if (!Number.isSafeInteger(meta[k]) || meta[k] < 0) fail(root, `meta.json ${k} is ${JSON.stringify(meta[k])}`);
  }
  if (typeof meta.hasLabels !== 'boolean') fail(root, 'meta.json hasLabels is not a boolean');

  const fds: number[] = [];
  const openChecked = (kind: FileKind, elements: number): number => {
    const file = path.join(root, FILES[kind].name);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return fail(root, `${FILES[kind].name} is missing`);
    }
    fds.push(fd);
    const size = fstatSync(fd).size;
    const expected = HEADER_BYTES + elements * FILES[kind].elementSize;
    if (size !== expected) fail(root, `${FILES[kind].name} has ${size} bytes, expected ${expected} (truncated or mismatched with meta.json)`);
    const h = Buffer.alloc(HEADER_BYTES);
    readSync(fd, h, 0, HEADER_BYTES, 0);
    if (h.toString('ascii', 0, 8) !== FILES[kind].magic) fail(root, `${FILES[kind].name} has a bad magic header`);
    if (h.readUInt32LE(8) !== TOKENIZED_VERSION) fail(root, `${FILES[kind].name} is format version ${h.readUInt32LE(8)}`);
    if (h.readUInt32LE(12) !== FILES[kind].elementSize) fail(root, `${FILES[kind].name} has element size ${h.readUInt32LE(12)}`);
    return fd;
  };

  try {
    const tokensFd = openChecked('tokens', meta.numTokens);
    const offsetsFd = openChecked('offsets', meta.count + 1);
    const labelsFd = meta.hasLabels ? openChecked('labels', meta.numTokens) : undefined;

    // Offsets are the only thing held in memory: 8 bytes per record.
    const offsets = new BigUint64Array(meta.count + 1);
    readFully(offsetsFd, new Uint8Array(offsets.buffer), HEADER_BYTES);
    const starts = new Float64Array(meta.count + 1);
    for (let i = 0; i <= meta.count; i++) {
      starts[i] = Number(offsets[i]);
      if (i === 0 ? starts[0] !== 0 : starts[i] < starts[i - 1]) fail(root, `offsets.bin entry ${i} is out of order`);
    }
    if (starts[meta.count] !== meta.numTokens) fail(root, `offsets.bin ends at ${starts[meta.count]}, meta.json says ${meta.numTokens} tokens`);

    const vocabSize = typeof meta.info?.vocabSize === 'number' ? meta.info.vocabSize : undefined;
    let closed = false;
    const check = (i: number): void => {
      if (closed) throw new TokenizedDatasetError(`${root}: the dataset was closed`);
      if (!Number.isInteger(i) || i < 0 || i >= meta.count) {
        throw new TokenizedDatasetError(`${root}: record index ${i} is out of range 0..${meta.count - 1}`);
      }
    };
    return {
      dir: root,
      meta,
      length: meta.count,
      lengthOf(i: number): number {
        check(i);
        return starts[i + 1] - starts[i];
      },
      get(i: number): TokenizedRecord {
        check(i);
        const start = starts[i];
        const n = starts[i + 1] - start;
        const inputIds = new Int32Array(n);
        readFully(tokensFd, new Uint8Array(inputIds.buffer), HEADER_BYTES + start * 4);
        if (vocabSize !== undefined) {
          for (let k = 0; k < n; k++) {
            if (inputIds[k] < 0 || inputIds[k] >= vocabSize) {
              throw new TokenizedDatasetError(`${root}: record ${i} token ${k} is ${inputIds[k]}, outside the vocabulary of ${vocabSize}`);
            }
          }
        }
        const labels = Int32Array.from(inputIds);
        if (labelsFd !== undefined) {
          const mask = new Uint8Array(n);
          readFully(labelsFd, mask, HEADER_BYTES + start);
          for (let k = 0; k < n; k++) if (mask[k] === 0) labels[k] = IGNORE_INDEX;
        }
        return { inputIds, labels };
      },
      close(): void {
        if (closed) return;
        closed = true;
        for (const fd of fds) closeSync(fd);
      },
    };
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    throw err;
  }
}

function readFully(fd: number, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new TokenizedDatasetError(`unexpected end of file while reading ${into.length} bytes at ${position}`);
    done += n;
  }
}
