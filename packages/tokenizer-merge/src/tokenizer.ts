/**
 * `loadTokenizer`: a SentencePiece model (plus the added tokens of a Hugging Face folder) as the
 * `Tokenizer` every cllama package uses. Encoding is done by the TypeScript SentencePiece encoder
 * (./encoder, ids identical to the C++ library); another backend (the tests plug in real SentencePiece,
 * sentencepiece-js) can be given instead. Added tokens such as `[PAD]` sit after the
 * SentencePiece vocab exactly as HF's LlamaTokenizer puts them.
 */
import { promises as fs } from 'node:fs';
import { refuseSpecialFile } from '@cllama/core';
import path from 'node:path';
import { SentencePieceEncoder } from './encoder/index.js';
import { ModelFormatError, PieceType, TokenizerMergeError, parseModelProto, resolveModelPath, validateModelProto, type ModelProto } from './proto.js';

export interface Tokenizer {
  /** SentencePiece pieces + added tokens (49,954 for the merged model + [PAD]). */
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  /** The pad token's id, if the tokenizer has one. */
  readonly padId: number | undefined;
  /** SentencePiece semantics: no special-token parsing in `text`. */
  encode(text: string, opts?: { addBos?: boolean; addEos?: boolean }): number[];
  decode(ids: readonly number[]): string;
  idToPiece(id: number): string;
  pieceToId(piece: string): number | undefined;
}

/** A token appended after the SentencePiece vocabulary (HF `added_tokens_decoder` entry). */
export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

/**
 * What does the actual SentencePiece encoding. The default is the TypeScript `SentencePieceEncoder`;
 * the tests plug in real SentencePiece (sentencepiece-js, the C++ library in wasm, a dev dependency)
 * through the same interface.
 */
export interface SentencePieceBackend {
  encodeIds(text: string): number[];
  encodePieces(text: string): string[];
  /** Decode ids that are all SentencePiece ids (no added tokens). */
  decodeIds(ids: number[]): string;
}

export interface TokenizerOptions {
  /** Encoder to use instead of the TypeScript one, built for the same ModelProto. */
  backend?: SentencePieceBackend;
  /** Tokens after the SentencePiece vocab, with consecutive ids starting at the piece count. */
  addedTokens?: AddedToken[];
  /** Text of the pad token (an added token or a SentencePiece piece), if any. */
  padToken?: string;
}

/**
 * Load a tokenizer from a `.model` file, or from a Hugging Face LlamaTokenizer folder
 * (`tokenizer.model` + the added tokens and pad token of `tokenizer_config.json` /
 * `special_tokens_map.json` / `added_tokens.json`).
 */
export async function loadTokenizer(pathOrDir: string): Promise<Tokenizer> {
  const modelPath = await resolveModelPath(pathOrDir);
  await refuseSpecialFile(modelPath);
  const bytes = new Uint8Array(await fs.readFile(modelPath));
  const proto = parseModelProto(bytes, modelPath);
  const stat = await fs.stat(pathOrDir);
  const options = stat.isDirectory() ? await readHfAddedTokens(pathOrDir, proto.pieces.length) : {};
  return createSentencePieceTokenizer(proto, options);
}

/** Build a Tokenizer from an in-memory ModelProto (validated first). */
export async function createSentencePieceTokenizer(proto: ModelProto, options: TokenizerOptions = {}): Promise<SentencePieceTokenizer> {
  validateModelProto(proto);
  const backend = options.backend ?? new SentencePieceEncoder(proto);
  return new SentencePieceTokenizer(proto, backend, options);
}

export class SentencePieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly padId: number | undefined;
  /** Number of SentencePiece pieces (ids below this are SentencePiece's). */
  readonly pieceCount: number;
  private readonly pieces: string[];
  private readonly ids = new Map<string, number>();
  private readonly added: Map<number, AddedToken>;

  constructor(
    readonly proto: ModelProto,
    private readonly processor: SentencePieceBackend,
    options: TokenizerOptions,
  ) {
    this.pieces = proto.pieces.map((p) => p.piece as string);
    this.pieceCount = this.pieces.length;
    this.pieces.forEach((p, i) => this.ids.set(p, i));
    const addedTokens = [...(options.addedTokens ?? [])].sort((a, b) => a.id - b.id);
    addedTokens.forEach((t, k) => {
      if (t.id !== this.pieceCount + k) {
        throw new TokenizerMergeError(
          `added token ${JSON.stringify(t.content)} has id ${t.id}; expected ${this.pieceCount + k} (added tokens follow the ${this.pieceCount} SentencePiece pieces without gaps)`,
        );
      }
      if (this.ids.has(t.content)) {
        throw new TokenizerMergeError(`added token ${JSON.stringify(t.content)} is already a SentencePiece piece`);
      }
      this.ids.set(t.content, t.id);
    });
    this.added = new Map(addedTokens.map((t) => [t.id, t]));
    this.vocabSize = this.pieceCount + addedTokens.length;
    const spec = proto.trainerSpec;
    this.unkId = proto.pieces.findIndex((p) => p.type === PieceType.UNKNOWN);
    this.bosId = spec?.bosId ?? 1;
    this.eosId = spec?.eosId ?? 2;
    if (options.padToken !== undefined) {
      const id = this.ids.get(options.padToken);
      if (id === undefined) {
        throw new TokenizerMergeError(`pad token ${JSON.stringify(options.padToken)} is neither a piece nor an added token`);
      }
      this.padId = id;
    } else {
      const spPad = spec?.padId ?? -1;
      this.padId = spPad >= 0 ? spPad : undefined;
    }
  }

  encode(text: string, opts: { addBos?: boolean; addEos?: boolean } = {}): number[] {
    const ids = text.length > 0 ? this.processor.encodeIds(text) : [];
    if (opts.addBos && this.bosId >= 0) ids.unshift(this.bosId);
    if (opts.addEos && this.eosId >= 0) ids.push(this.eosId);
    return ids;
  }

  /** Pieces of `text` as SentencePiece segments it. */
  encodePieces(text: string): string[] {
    return text.length > 0 ? this.processor.encodePieces(text) : [];
  }

  decode(ids: readonly number[]): string {
    // SentencePiece decodes runs of its own ids; added tokens are emitted as their text, as HF does.
    let out = '';
    let run: number[] = [];
    const flush = () => {
      if (run.length > 0) out += this.processor.decodeIds(run);
      run = [];
    };
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new TokenizerMergeError(`id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
      const added = this.added.get(id);
      if (added) {
        flush();
        out += added.content;
      } else {
        run.push(id);
      }
    }
    flush();
    return out;
  }

  idToPiece(id: number): string {
    if (id >= 0 && id < this.pieceCount) return this.pieces[id];
    const added = this.added.get(id);
    if (added) return added.content;
    throw new TokenizerMergeError(`id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
  }

  pieceToId(piece: string): number | undefined {
    return this.ids.get(piece);
  }
}

/** Read the added tokens and pad token HF stored beside `tokenizer.model`. */
export async function readHfAddedTokens(dir: string, pieceCount: number): Promise<TokenizerOptions> {
  const config = await readJsonIfExists(path.join(dir, 'tokenizer_config.json'));
  const specialMap = await readJsonIfExists(path.join(dir, 'special_tokens_map.json'));
  const addedJson = await readJsonIfExists(path.join(dir, 'added_tokens.json'));
  return readHfAddedTokensFromFiles(config, specialMap, addedJson, pieceCount);
}

/** The same from already parsed tokenizer_config.json / special_tokens_map.json / added_tokens.json. */
export function readHfAddedTokensFromFiles(
  config: Record<string, unknown> | undefined,
  specialMap: Record<string, unknown> | undefined,
  addedJson: Record<string, unknown> | undefined,
  pieceCount: number,
): TokenizerOptions {
  const byId = new Map<number, AddedToken>();
  const decoder = config?.added_tokens_decoder;
  if (decoder && typeof decoder === 'object') {
    for (const [key, value] of Object.entries(decoder as Record<string, { content?: unknown; special?: unknown }>)) {
      const id = Number(key);
      if (id >= pieceCount && typeof value?.content === 'string') {
        byId.set(id, { id, content: value.content, special: value.special !== false });
      }
    }
  }
  if (addedJson && typeof addedJson === 'object') {
    for (const [content, id] of Object.entries(addedJson)) {
      if (typeof id === 'number' && id >= pieceCount && !byId.has(id)) byId.set(id, { id, content, special: true });
    }
  }
  const padToken = tokenText(config?.pad_token) ?? tokenText(specialMap?.pad_token);
  return { addedTokens: [...byId.values()], padToken };
}

function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

async function readJsonIfExists(file: string): Promise<Record<string, unknown> | undefined> {
  await refuseSpecialFile(file);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new ModelFormatError(`${file} is not valid JSON (${(err as Error).message}); fix or remove it`);
  }
}
