/**
 * The safetensors format: read, write and validation in one module.
 *
 * Layout (https://github.com/huggingface/safetensors): an unsigned 64-bit little-endian header length N,
 * N bytes of UTF-8 JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`
 * (padded with spaces), then the data section; offsets are relative to the start of the data section.
 *
 * Reading never loads the whole file: the header is validated against the file size before anything
 * sized by the file is allocated, and tensors are read one at a time through a file handle. Every
 * problem with a file is a SafetensorsError that says what is wrong and what to do.
 */
import { CllamaError, fsErrorReason, fsyncDir, refuseSpecialFile, tempSibling, WriteError, writeFileAtomic } from '@cllama/core';
import { LoraError } from './errors.js';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readFully, writeFully } from './atomic-file.js';
import { decodeBF16, decodeF16, encodeF16 } from './half-float.js';

export class SafetensorsError extends LoraError {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'SafetensorsError';
  }
}

/** Bytes per element of every dtype the format defines. */
export const SAFETENSORS_DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_SIZES;
/** The dtypes this package loads (as float32) and the ones it writes. */
export const LOADABLE_DTYPES: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16', 'F64'];
export type SaveDtype = 'F32' | 'F16';

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** The N of the file's first 8 bytes. */
  headerLength: number;
  /** Absolute file offset of the data section (8 + N). */
  dataStart: number;
  fileSize: number;
  /** Tensors in file (data offset) order. */
  tensors: SafetensorsTensorInfo[];
  metadata: Record<string, string>;
}

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** The safetensors Rust library refuses headers above 100 MB; so do we (a 7B model's header is ~30 KB). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Validate a header's JSON bytes against the size of the file they came from. Pure: no I/O.
 * Checks: valid UTF-8 JSON object; every entry has a known dtype, a shape of non-negative integers and
 * integer data_offsets; shape × dtype size equals the offset span; offsets lie in the data section,
 * start at 0 and tile it without gaps or overlaps (as the reference library demands); metadata is str → str.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, file?: string): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new SafetensorsError(msg, file);
  };
  const headerLength = headerBytes.length;
  const dataStart = 8 + headerLength;
  if (dataStart > fileSize) fail(`header of ${headerLength} bytes does not fit in a file of ${fileSize} bytes`);
  const dataSize = fileSize - dataStart;

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    return fail('header is not valid UTF-8; the file is corrupt or not a safetensors file');
  }
  if (!text.startsWith('{')) fail(`header does not start with '{'; the file is corrupt or not a safetensors file`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message.replace(/\s+/g, ' ')}); the file is corrupt or truncated — re-download or re-export it`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('header JSON is not an object');

  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string (the format allows only string values)`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) fail(`tensor '${name}': entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_SIZES)) {
      fail(`tensor '${name}': unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(SAFETENSORS_DTYPE_SIZES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      fail(`tensor '${name}': data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] with 0 ≤ begin ≤ end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataSize) {
      fail(
        `tensor '${name}': data_offsets [${begin}, ${end}] run past the data section (${dataSize} bytes); the file is truncated — re-download or re-export it`,
      );
    }
    // Shape product can exceed 2^53 for hostile shapes; compare in BigInt.
    const elementSize = SAFETENSORS_DTYPE_SIZES[dtype as SafetensorsDtype];
    const expectedBytes = (shape as number[]).reduce((acc, d) => acc * BigInt(d), 1n) * BigInt(elementSize);
    if (expectedBytes !== BigInt(end - begin)) {
      fail(`tensor '${name}': shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${expectedBytes} bytes but data_offsets span ${end - begin}`);
    }
    tensors.push({ name, dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], dataOffsets: [begin, end] });
  }

  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let cursor = 0;
  for (const t of tensors) {
    if (t.dataOffsets[0] < cursor) fail(`tensor '${t.name}': data_offsets [${t.dataOffsets}] overlap the previous tensor (ends at ${cursor})`);
    if (t.dataOffsets[0] > cursor) fail(`tensor '${t.name}': gap in the data section before offset ${t.dataOffsets[0]} (previous tensor ends at ${cursor})`);
    cursor = t.dataOffsets[1];
  }
  if (cursor !== dataSize) {
    fail(`data section is ${dataSize} bytes but the tensors cover ${cursor}; the file is corrupt or has trailing bytes`);
  }
  return { headerLength, dataStart, fileSize, tensors, metadata };
}

async function readHeaderFromHandle(handle: fs.FileHandle, file: string): Promise<SafetensorsHeader> {
  const { size: fileSize } = await handle.stat();
  if (fileSize < 8)
    throw new SafetensorsError(`file is ${fileSize} bytes, too short to hold the 8-byte header length; it is truncated or not a safetensors file`, file);
  const lengthBytes = new Uint8Array(8);
  if (!(await readFully(handle, lengthBytes, 0))) throw new SafetensorsError('file shrank while reading', file);
  const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  // Check the claimed length against the file size and a sane cap BEFORE allocating anything for it.
  if (headerLength > BigInt(fileSize - 8)) {
    throw new SafetensorsError(
      `header length ${headerLength} exceeds the file size (${fileSize} bytes); the file is truncated or not a safetensors file`,
      file,
    );
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`header length ${headerLength} is above the ${MAX_HEADER_BYTES}-byte limit; the file is not a sane safetensors file`, file);
  }
  if (headerLength < 2n) throw new SafetensorsError(`header length ${headerLength} is too small to hold a JSON object`, file);
  const headerBytes = new Uint8Array(Number(headerLength));
  if (!(await readFully(handle, headerBytes, 8))) throw new SafetensorsError('file shrank while reading', file);
  return parseSafetensorsHeader(headerBytes, fileSize, file);
}

async function openForReading(file: string): Promise<fs.FileHandle> {
  await refuseSpecialFile(file); // a FIFO would block the open forever
  try {
    const handle = await fs.open(file, 'r');
    // POSIX opens a folder for reading without complaint; the read would fail with a bare EISDIR
    if ((await handle.stat()).isDirectory()) {
      await handle.close();
      throw Object.assign(new Error('is a folder'), { code: 'EISDIR' });
    }
    return handle;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SafetensorsError('file not found; check the path', file);
    if (code === 'EISDIR') throw new SafetensorsError('is a folder, not a .safetensors file', file);
    throw new SafetensorsError(`cannot open (${(err as Error).message})`, file);
  }
}

/** Read and validate a safetensors file's header (reads only the header bytes). */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const handle = await openForReading(file);
  try {
    return await readHeaderFromHandle(handle, file);
  } finally {
    await handle.close();
  }
}

const hostIsLittleEndian = os.endianness() === 'LE';

/** Decode a tensor's raw little-endian bytes as float32 values. */
export function decodeTensorBytes(bytes: Uint8Array, dtype: SafetensorsDtype, name = 'tensor', file?: string): Float32Array {
  switch (dtype) {
    case 'F32': {
      if (hostIsLittleEndian && bytes.byteOffset % 4 === 0) {
        return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
      }
      const out = new Float32Array(bytes.length / 4);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case 'F16':
      return decodeF16(bytes);
    case 'BF16':
      return decodeBF16(bytes);
    case 'F64': {
      const out = new Float32Array(bytes.length / 8);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    }
    default:
      throw new SafetensorsError(
        `tensor '${name}' has dtype ${dtype}, which is not a floating-point weight; only ${LOADABLE_DTYPES.join(', ')} load as float32`,
        file,
      );
  }
}

/** An open safetensors file. Tensors are read one at a time, on demand. */
export class SafetensorsFile {
  private readonly byName: Map<string, SafetensorsTensorInfo>;
  private closed = false;

  private constructor(
    readonly path: string,
    readonly header: SafetensorsHeader,
    private readonly handle: fs.FileHandle,
  ) {
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  static async open(file: string): Promise<SafetensorsFile> {
    const handle = await openForReading(file);
    try {
      const header = await readHeaderFromHandle(handle, file);
      return new SafetensorsFile(file, header, handle);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  /** Tensor names in file order. */
  names(): string[] {
    return this.header.tensors.map((t) => t.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): SafetensorsTensorInfo {
    const info = this.byName.get(name);
    if (!info) throw new SafetensorsError(`no tensor named '${name}' (the file has ${this.byName.size} tensors)`, this.path);
    return info;
  }

  /** The tensor's raw bytes as stored. */
  async readBytes(name: string): Promise<Uint8Array> {
    if (this.closed) throw new SafetensorsError('file is closed', this.path);
    const info = this.info(name);
    const [begin, end] = info.dataOffsets;
    const bytes = new Uint8Array(end - begin); // bounded by the validated file size
    if (!(await readFully(this.handle, bytes, this.header.dataStart + begin))) {
      throw new SafetensorsError(`tensor '${name}': file ended early (it changed on disk while open?)`, this.path);
    }
    return bytes;
  }

  /** Read one tensor, converted to float32 (F32, F16, BF16 and F64 are accepted). */
  async read(name: string): Promise<Float32Array> {
    const info = this.info(name);
    if (!LOADABLE_DTYPES.includes(info.dtype)) {
      // Refuse before reading: integer/bool/fp8 tensors are not weights this package can use.
      throw new SafetensorsError(
        `tensor '${name}' has dtype ${info.dtype}, which is not a floating-point weight; only ${LOADABLE_DTYPES.join(', ')} load as float32`,
        this.path,
      );
    }
    return decodeTensorBytes(await this.readBytes(name), info.dtype, name, this.path);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/** Number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function validateTensorsToWrite(tensors: readonly NamedTensor[], file: string): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name.length === 0) throw new SafetensorsError('a tensor has an empty name', file);
    if (t.name === '__metadata__') throw new SafetensorsError(`'__metadata__' is reserved and cannot be a tensor name`, file);
    if (seen.has(t.name)) throw new SafetensorsError(`tensor '${t.name}' appears twice`, file);
    seen.add(t.name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new SafetensorsError(`tensor '${t.name}': shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`, file);
    if (!(t.data instanceof Float32Array)) throw new SafetensorsError(`tensor '${t.name}': data must be a Float32Array`, file);
    if (shapeSize(t.shape) !== t.data.length) {
      throw new SafetensorsError(`tensor '${t.name}': shape [${t.shape.join(', ')}] has ${shapeSize(t.shape)} elements but data has ${t.data.length}`, file);
    }
  }
}

/** Encode float32 values as the bytes of a stored dtype. */
export function encodeTensorData(data: Float32Array, dtype: SaveDtype): Uint8Array {
  if (dtype === 'F16') return encodeF16(data);
  if (hostIsLittleEndian) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i], true);
  return out;
}

/**
 * The bytes of the header block (8-byte length + JSON padded with spaces to a multiple of 8, as the
 * reference library writes it) for tensors stored back to back in the given order.
 */
export function encodeSafetensorsHeader(
  entries: ReadonlyArray<{ name: string; shape: readonly number[]; dtype: SafetensorsDtype }>,
  metadata: Record<string, string> | undefined,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const e of entries) {
    const bytes = shapeSize(e.shape) * SAFETENSORS_DTYPE_SIZES[e.dtype];
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Write tensors to a safetensors file atomically (temp file + fsync + rename). Tensors are stored in
 * the given order as F32 (default) or F16 (round to nearest even). Metadata defaults to {format: 'pt'},
 * which transformers expects.
 */
export async function writeSafetensors(
  file: string,
  tensors: readonly NamedTensor[],
  opts: { dtype?: SaveDtype; metadata?: Record<string, string> } = {},
): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16') throw new SafetensorsError(`cannot save as ${String(dtype)}; use F32 or F16`, file);
  validateTensorsToWrite(tensors, file);
  const metadata = opts.metadata ?? { format: 'pt' };
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new SafetensorsError(`metadata value for '${k}' must be a string`, file);
  }
  const header = encodeSafetensorsHeader(
    tensors.map((t) => ({ name: t.name, shape: t.shape, dtype })),
    metadata,
  );
  await writeFileAtomic(file, async (handle) => {
    await writeFully(handle, header);
    for (const t of tensors) await writeFully(handle, encodeTensorData(t.data, dtype));
  });
}

/** A raw file-system error while writing `file` becomes one line naming it (core's WriteError). */
function writeFailure(err: unknown, file: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return err instanceof CllamaError || typeof code !== 'string' ? err : new WriteError(file, fsErrorReason(err), { cause: err });
}

/**
 * Writes a safetensors file whose tensors arrive one at a time (so a whole shard need not sit in
 * memory), atomically: everything goes to a temp file that is fsynced and renamed over the target by
 * `finish()`; `abort()` removes it. As in @cllama/core's writers, every write is written fully, the
 * temp file's size on disk is checked against the bytes handed over before the rename, and a failed
 * write is a `WriteError` naming `file` (a full disk never leaves a torn shard).
 *
 * With a `layout` (names and shapes known up front) the header is written first and each tensor's data
 * goes straight after it — one pass over the disk. Without one, the data goes to a scratch file as it
 * comes and `finish()` writes header + data (a second copy of the data).
 */
export class SafetensorsStreamWriter {
  private readonly entries: Array<{ name: string; shape: number[]; dtype: SafetensorsDtype }> = [];
  private readonly names = new Set<string>();
  private bytesWritten = 0;
  /** Bytes of the header written before the data (with a layout). */
  private headerBytes = 0;

  private constructor(
    readonly file: string,
    readonly dtype: SaveDtype,
    private readonly metadata: Record<string, string>,
    /** Temp file: the final content with a layout, the data section alone without one. */
    private readonly tmpPath: string,
    private readonly tmp: fs.FileHandle,
    private readonly layout: ReadonlyArray<{ name: string; shape: readonly number[] }> | undefined,
  ) {}

  static async create(
    file: string,
    opts: { dtype?: SaveDtype; metadata?: Record<string, string>; layout?: ReadonlyArray<{ name: string; shape: readonly number[] }> } = {},
  ): Promise<SafetensorsStreamWriter> {
    const dtype = opts.dtype ?? 'F32';
    if (dtype !== 'F32' && dtype !== 'F16') throw new SafetensorsError(`cannot save as ${String(dtype)}; use F32 or F16`, file);
    const metadata = opts.metadata ?? { format: 'pt' };
    const tmpPath = tempSibling(file, opts.layout ? 'tmp' : 'data');
    const tmp = await fs.open(tmpPath, 'wx').catch((err: unknown) => {
      throw writeFailure(err, file);
    });
    const writer = new SafetensorsStreamWriter(file, dtype, metadata, tmpPath, tmp, opts.layout);
    if (opts.layout) {
      try {
        const names = new Set<string>();
        for (const e of opts.layout) {
          if (names.has(e.name)) throw new SafetensorsError(`tensor '${e.name}' appears twice in the layout`, file);
          names.add(e.name);
        }
        const header = encodeSafetensorsHeader(
          opts.layout.map((e) => ({ ...e, dtype })),
          metadata,
        );
        await writeFully(tmp, header);
        writer.headerBytes = header.length;
      } catch (err) {
        await writer.abort();
        throw writeFailure(err, file);
      }
    }
    return writer;
  }

  /** Bytes of tensor data added so far. */
  get dataBytes(): number {
    return this.bytesWritten;
  }

  get tensorCount(): number {
    return this.entries.length;
  }

  async add(tensor: NamedTensor): Promise<void> {
    if (this.names.has(tensor.name)) throw new SafetensorsError(`tensor '${tensor.name}' appears twice`, this.file);
    validateTensorsToWrite([tensor], this.file);
    if (this.layout) {
      const expected = this.layout[this.entries.length];
      if (!expected || expected.name !== tensor.name || expected.shape.join() !== tensor.shape.join()) {
        throw new SafetensorsError(
          `tensor '${tensor.name}' [${tensor.shape}] arrived where the layout expects ${expected ? `'${expected.name}' [${expected.shape}]` : 'no more tensors'}`,
          this.file,
        );
      }
    }
    const bytes = encodeTensorData(tensor.data, this.dtype);
    await writeFully(this.tmp, bytes).catch((err: unknown) => {
      throw writeFailure(err, this.file);
    });
    this.names.add(tensor.name);
    this.entries.push({ name: tensor.name, shape: [...tensor.shape], dtype: this.dtype });
    this.bytesWritten += bytes.length;
  }

  async finish(): Promise<void> {
    if (this.layout) {
      if (this.entries.length !== this.layout.length) {
        await this.abort();
        throw new SafetensorsError(`only ${this.entries.length} of the ${this.layout.length} tensors of the layout were written`, this.file);
      }
      try {
        await this.tmp.sync();
        const onDisk = (await this.tmp.stat()).size;
        const handed = this.headerBytes + this.bytesWritten;
        if (onDisk !== handed) throw new WriteError(this.file, `only ${onDisk} of ${handed} bytes reached the disk (is it full?); nothing was written`);
        await this.tmp.close();
        await fs.rename(this.tmpPath, this.file);
      } catch (err) {
        await this.abort();
        throw writeFailure(err, this.file);
      }
      await fsyncDir(path.dirname(this.file));
      return;
    }
    await this.tmp.close();
    try {
      const header = encodeSafetensorsHeader(this.entries, this.metadata);
      await writeFileAtomic(this.file, async (handle) => {
        await writeFully(handle, header);
        const source = await fs.open(this.tmpPath, 'r');
        try {
          const chunk = new Uint8Array(Math.min(16 << 20, Math.max(1, this.bytesWritten)));
          for (let pos = 0; pos < this.bytesWritten; ) {
            const { bytesRead } = await source.read(chunk, 0, Math.min(chunk.length, this.bytesWritten - pos), pos);
            if (bytesRead === 0) throw new SafetensorsError('scratch data file ended early', this.file);
            await writeFully(handle, chunk.subarray(0, bytesRead));
            pos += bytesRead;
          }
        } finally {
          await source.close();
        }
      });
    } finally {
      await fs.rm(this.tmpPath, { force: true });
    }
  }

  async abort(): Promise<void> {
    await this.tmp.close().catch(() => undefined);
    await fs.rm(this.tmpPath, { force: true });
  }
}
