/**
 * Hugging Face model folders: `config.json` + `model.safetensors`, or sharded
 * `model-0000k-of-0000n.safetensors` + `model.safetensors.index.json` — opened for reading one tensor
 * at a time, and written atomically (whole folder built under a temporary name, then renamed).
 *
 * Pickled PyTorch weights (`pytorch_model.bin`, `*.bin`) are never opened: unpickling runs arbitrary
 * code. Such folders get an error that says how to convert them.
 */
import { refuseSpecialFile, writeFileAtomic, writeFolderAtomic } from '@cllama/core';
import { LoraError } from './errors.js';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { type LlamaConfig, readLlamaConfig, serializeLlamaConfig } from './llama-config.js';
import {
  type NamedTensor,
  SAFETENSORS_DTYPE_SIZES,
  type SafetensorsTensorInfo,
  SafetensorsFile,
  SafetensorsStreamWriter,
  type SaveDtype,
  shapeSize,
} from './safetensors.js';

export class CheckpointError extends LoraError {
  constructor(
    message: string,
    readonly dir?: string,
  ) {
    super(dir ? `${dir}: ${message}` : message);
    this.name = 'CheckpointError';
  }
}

export const SINGLE_FILE_NAME = 'model.safetensors';
export const INDEX_FILE_NAME = 'model.safetensors.index.json';
const SHARD_PATTERN = /^model-(\d{5})-of-(\d{5})\.safetensors$/;

/** HF's shard name: model-00001-of-00003.safetensors. */
export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index)}-of-${pad(count)}.safetensors`;
}

/**
 * Error for a folder that holds only pickled weights. Shared with the PEFT adapter reader.
 * `what` names the folder's role ("model folder", "adapter folder").
 */
export function pickleOnlyError(dir: string, pickles: string[], what: string): CheckpointError {
  return new CheckpointError(
    `${what} holds only pickled PyTorch weights (${pickles.join(', ')}), which are never loaded here because ` +
      `unpickling can run arbitrary code. Convert them to safetensors first, e.g. in Python: ` +
      `model.save_pretrained(dir, safe_serialization=True), or safetensors.torch.save_file(torch.load(f), 'model.safetensors').`,
    dir,
  );
}

async function listDir(dir: string, what: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CheckpointError(`${what} not found; check the path`, dir);
    if (code === 'ENOTDIR') throw new CheckpointError(`is a file; pass the ${what} that contains it`, dir);
    throw err;
  }
}

interface ShardIndex {
  metadata?: { total_size?: number };
  weight_map: Record<string, string>;
}

function parseIndex(text: string, file: string): ShardIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`is not valid JSON (${(err as Error).message.replace(/\s+/g, ' ')})`, file);
  }
  const wm = (json as ShardIndex | null)?.weight_map;
  if (!wm || typeof wm !== 'object' || Array.isArray(wm)) throw new CheckpointError(`has no "weight_map" object`, file);
  for (const [name, shard] of Object.entries(wm)) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard.startsWith('.')) {
      throw new CheckpointError(`weight_map['${name}'] = ${JSON.stringify(shard)} is not a file name in the folder`, file);
    }
  }
  return json as ShardIndex;
}

/** An HF LLaMA folder opened for reading: config + tensors, read one at a time. */
export class HFCheckpoint {
  private constructor(
    readonly dir: string,
    readonly config: LlamaConfig,
    /** Tensor name → the open file holding it. */
    private readonly location: Map<string, SafetensorsFile>,
    private readonly files: SafetensorsFile[],
  ) {}

  static async open(dir: string): Promise<HFCheckpoint> {
    const entries = await listDir(dir, 'model folder');
    const config = await readLlamaConfig(dir);
    const files: SafetensorsFile[] = [];
    const location = new Map<string, SafetensorsFile>();
    try {
      if (entries.includes(INDEX_FILE_NAME)) {
        const indexPath = path.join(dir, INDEX_FILE_NAME);
        await refuseSpecialFile(indexPath);
        const index = parseIndex(await fs.readFile(indexPath, 'utf8'), indexPath);
        const shardNames = [...new Set(Object.values(index.weight_map))].sort();
        if (shardNames.length === 0) throw new CheckpointError('weight_map is empty', indexPath);
        for (const shardName of shardNames) {
          if (!entries.includes(shardName)) {
            throw new CheckpointError(`lists shard ${shardName}, which is missing from the folder; re-download the model`, indexPath);
          }
          const file = await SafetensorsFile.open(path.join(dir, shardName));
          files.push(file);
          for (const name of file.names()) {
            if (index.weight_map[name] !== shardName) {
              throw new CheckpointError(
                `shard ${shardName} holds tensor '${name}' but the index maps it to ${JSON.stringify(index.weight_map[name] ?? null)}; the index and the shards disagree`,
                indexPath,
              );
            }
            location.set(name, file);
          }
        }
        for (const [name, shardName] of Object.entries(index.weight_map)) {
          if (!location.has(name)) throw new CheckpointError(`maps '${name}' to ${shardName}, which does not contain it`, indexPath);
        }
      } else if (entries.includes(SINGLE_FILE_NAME)) {
        const file = await SafetensorsFile.open(path.join(dir, SINGLE_FILE_NAME));
        files.push(file);
        for (const name of file.names()) location.set(name, file);
      } else {
        const shards = entries.filter((e) => SHARD_PATTERN.test(e));
        if (shards.length > 0) {
          throw new CheckpointError(`has shards (${shards[0]}, …) but no ${INDEX_FILE_NAME}; copy the index file along with the shards`, dir);
        }
        const pickles = entries.filter((e) => e.endsWith('.bin') || e.endsWith('.pt') || e.endsWith('.pth'));
        if (pickles.length > 0) throw pickleOnlyError(dir, pickles, 'model folder');
        throw new CheckpointError(`no ${SINGLE_FILE_NAME} or ${INDEX_FILE_NAME} found; this is not a Hugging Face safetensors model folder`, dir);
      }
    } catch (err) {
      await Promise.all(files.map((f) => f.close()));
      throw err;
    }
    return new HFCheckpoint(dir, config, location, files);
  }

  /** Tensor names, in file order (shard by shard). */
  names(): string[] {
    return this.files.flatMap((f) => f.names());
  }

  has(name: string): boolean {
    return this.location.has(name);
  }

  info(name: string): SafetensorsTensorInfo {
    return this.fileOf(name).info(name);
  }

  /** Read one tensor as float32. */
  async read(name: string): Promise<Float32Array> {
    return this.fileOf(name).read(name);
  }

  /** The shard files (for reporting). */
  shardPaths(): string[] {
    return this.files.map((f) => f.path);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }

  private fileOf(name: string): SafetensorsFile {
    const file = this.location.get(name);
    if (!file) throw new CheckpointError(`no tensor named '${name}' in the checkpoint`, this.dir);
    return file;
  }
}

export interface SaveHFCheckpointOptions {
  /** Stored dtype (default F32). */
  dtype?: SaveDtype;
  /** Start a new shard when the next tensor would push the current one past this (default 5 GB, HF's default). */
  maxShardBytes?: number;
  /** Replace an existing non-empty folder (default: refuse). */
  force?: boolean;
  /** Extra files to put in the folder, name → content (e.g. generation_config.json). */
  extraFiles?: Record<string, string | Uint8Array>;
  /**
   * Names and shapes of the tensors, in the order they will arrive. Optional; when given, each shard's
   * header is written first and the data follows in one pass (no scratch copy), and tensors that do not
   * match the layout are an error.
   */
  layout?: ReadonlyArray<{ name: string; shape: readonly number[] }>;
  /** Called after each tensor is written (progress reporting). */
  onTensor?: (name: string, index: number) => void;
}

/**
 * Write an HF model folder atomically: config.json, and the tensors as model.safetensors (one shard) or
 * model-0000k-of-0000n.safetensors + model.safetensors.index.json (several), like transformers'
 * save_pretrained. Tensors may be an async iterable so that only one needs to be in memory at a time.
 */
export async function saveHFCheckpoint(
  dir: string,
  config: LlamaConfig,
  tensors: AsyncIterable<NamedTensor> | Iterable<NamedTensor>,
  opts: SaveHFCheckpointOptions = {},
): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const maxShardBytes = opts.maxShardBytes ?? 5_000_000_000;
  if (!(maxShardBytes > 0)) throw new CheckpointError(`maxShardBytes must be positive, got ${maxShardBytes}`, dir);
  const elementBytes = SAFETENSORS_DTYPE_SIZES[dtype];

  await writeFolderAtomic(
    dir,
    async (tmp) => {
      await writeFileAtomic(path.join(tmp, 'config.json'), serializeLlamaConfig(config));
      for (const [name, content] of Object.entries(opts.extraFiles ?? {})) {
        await writeFileAtomic(path.join(tmp, name), content);
      }

      // Shard plan: a new shard starts when the next tensor would push the current one past the limit.
      const planShards = (sizes: number[]): number[][] => {
        const groups: number[][] = [];
        let current = 0;
        for (const [i, bytes] of sizes.entries()) {
          if (groups.length === 0 || (groups[groups.length - 1].length > 0 && current + bytes > maxShardBytes)) {
            groups.push([]);
            current = 0;
          }
          groups[groups.length - 1].push(i);
          current += bytes;
        }
        return groups;
      };
      const layout = opts.layout;
      const layoutShards = layout ? planShards(layout.map((t) => shapeSize(t.shape) * elementBytes)) : undefined;

      // Without a layout the shard count is unknown until the end: shards get provisional names first.
      const shards: Array<{ provisional: string; names: string[] }> = [];
      let writer: SafetensorsStreamWriter | undefined;
      let totalSize = 0;
      let count = 0;
      const seen = new Set<string>();
      try {
        for await (const t of tensors as AsyncIterable<NamedTensor>) {
          if (seen.has(t.name)) throw new CheckpointError(`tensor '${t.name}' given twice`, dir);
          seen.add(t.name);
          const bytes = shapeSize(t.shape) * elementBytes;
          const startNew = layoutShards
            ? !writer || writer.tensorCount === layoutShards[shards.length - 1].length
            : !writer || (writer.tensorCount > 0 && writer.dataBytes + bytes > maxShardBytes);
          if (startNew) {
            if (writer) await writer.finish();
            writer = undefined;
            const k = shards.length;
            if (layoutShards && k >= layoutShards.length) throw new CheckpointError(`tensor '${t.name}' is not in the layout`, dir);
            // with a layout the final names are known (so a write error names the real file)
            const final = layoutShards && (layoutShards.length === 1 ? SINGLE_FILE_NAME : shardFileName(k + 1, layoutShards.length));
            const provisional = path.join(tmp, final ?? `shard-${k + 1}.partial`);
            writer = await SafetensorsStreamWriter.create(provisional, {
              dtype,
              metadata: { format: 'pt' },
              layout: layoutShards ? layoutShards[k].map((i) => layout![i]) : undefined,
            });
            shards.push({ provisional, names: [] });
          }
          await writer!.add(t);
          shards[shards.length - 1].names.push(t.name);
          totalSize += bytes;
          opts.onTensor?.(t.name, count);
          count++;
        }
        if (layout && count !== layout.length) throw new CheckpointError(`${count} tensors arrived but the layout lists ${layout.length}`, dir);
        if (writer) await writer.finish();
        writer = undefined;
      } catch (err) {
        await writer?.abort();
        throw err;
      }
      if (shards.length === 0) throw new CheckpointError('no tensors to save', dir);

      if (shards.length === 1) {
        if (path.basename(shards[0].provisional) !== SINGLE_FILE_NAME) await fs.rename(shards[0].provisional, path.join(tmp, SINGLE_FILE_NAME));
        return;
      }
      const weightMap: Record<string, string> = {};
      for (const [i, shard] of shards.entries()) {
        const finalName = shardFileName(i + 1, shards.length);
        if (path.basename(shard.provisional) !== finalName) await fs.rename(shard.provisional, path.join(tmp, finalName));
        for (const name of shard.names) weightMap[name] = finalName;
      }
      const sortedMap = Object.fromEntries(
        Object.keys(weightMap)
          .sort()
          .map((k) => [k, weightMap[k]]),
      );
      const index = { metadata: { total_size: totalSize }, weight_map: sortedMap };
      await writeFileAtomic(path.join(tmp, INDEX_FILE_NAME), JSON.stringify(index, null, 2) + '\n');
    },
    { force: opts.force },
  );
}
