/**
 * SentencePiece `ModelProto` (the `.model` file): read, write, validate.
 *
 * Decoding and encoding are done by protobufjs from the official schema (./proto-schema.ts).
 * Two properties matter for reproducing other tools' files byte for byte:
 *  - Field presence. proto2 optional fields that were absent on the wire stay absent: decoded
 *    messages carry only the fields that were present as own properties (defaults live on the
 *    prototype, so reading an absent field still gives the proto2 default), and the encoder writes
 *    only own, non-null fields. A piece written as `{piece, score: 0}` (no type) stays that way.
 *  - Unknown fields. Decoding runs with `discardUnknown = false`, so every field the schema does not
 *    know (including extensions 200+) is kept as raw bytes in the message's non-enumerable
 *    `$unknowns` list and re-emitted after the known fields, as C++ protobuf does.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CllamaError, refuseSpecialFile } from '@cllama/core';
import protobuf from 'protobufjs';
import { SENTENCEPIECE_MODEL_PROTO } from './proto-schema.js';

/** Base class of every error this package throws on bad input. */
export class TokenizerMergeError extends CllamaError {
  override name = 'TokenizerMergeError';
}

/** The bytes are not a (complete, valid) SentencePiece model. */
export class ModelFormatError extends TokenizerMergeError {
  override name = 'ModelFormatError';
}

/** `ModelProto.SentencePiece.Type` */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type PieceType = (typeof PieceType)[keyof typeof PieceType];

/** `TrainerSpec.ModelType` */
export const ModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;
export type ModelType = (typeof ModelType)[keyof typeof ModelType];

/** protobufjs represents uint64 as a number or, when the `long` package is present, a Long. */
export type Uint64 = number | { low: number; high: number; unsigned: boolean; toNumber(): number };

/** Raw bytes of fields the schema does not know, kept by the decoder (non-enumerable). */
interface WithUnknowns {
  $unknowns?: Uint8Array[];
}

export interface SentencePiece extends WithUnknowns {
  piece?: string;
  score?: number;
  type?: PieceType;
}

export interface TrainerSpec extends WithUnknowns {
  input?: string[];
  inputFormat?: string;
  modelPrefix?: string;
  modelType?: ModelType;
  vocabSize?: number;
  acceptLanguage?: string[];
  selfTestSampleSize?: number;
  enableDifferentialPrivacy?: boolean;
  differentialPrivacyNoiseLevel?: number;
  differentialPrivacyClippingThreshold?: Uint64;
  characterCoverage?: number;
  inputSentenceSize?: Uint64;
  shuffleInputSentence?: boolean;
  miningSentenceSize?: number;
  trainingSentenceSize?: number;
  seedSentencepieceSize?: number;
  shrinkingFactor?: number;
  maxSentenceLength?: number;
  numThreads?: number;
  numSubIterations?: number;
  maxSentencepieceLength?: number;
  splitByUnicodeScript?: boolean;
  splitByNumber?: boolean;
  splitByWhitespace?: boolean;
  treatWhitespaceAsSuffix?: boolean;
  allowWhitespaceOnlyPieces?: boolean;
  splitDigits?: boolean;
  pretokenizationDelimiter?: string;
  controlSymbols?: string[];
  userDefinedSymbols?: string[];
  requiredChars?: string;
  byteFallback?: boolean;
  vocabularyOutputPieceScore?: boolean;
  hardVocabLimit?: boolean;
  useAllVocab?: boolean;
  unkId?: number;
  bosId?: number;
  eosId?: number;
  padId?: number;
  unkPiece?: string;
  bosPiece?: string;
  eosPiece?: string;
  padPiece?: string;
  unkSurface?: string;
  trainExtremelyLargeCorpus?: boolean;
  seedSentencepiecesFile?: string;
}

export interface NormalizerSpec extends WithUnknowns {
  name?: string;
  precompiledCharsmap?: Uint8Array;
  addDummyPrefix?: boolean;
  removeExtraWhitespaces?: boolean;
  escapeWhitespaces?: boolean;
  normalizationRuleTsv?: string;
}

export interface SelfTestSample extends WithUnknowns {
  input?: string;
  expected?: string;
}

export interface SelfTestData extends WithUnknowns {
  samples?: SelfTestSample[];
}

export interface ModelProto extends WithUnknowns {
  pieces: SentencePiece[];
  trainerSpec?: TrainerSpec;
  normalizerSpec?: NormalizerSpec;
  selfTestData?: SelfTestData;
  denormalizerSpec?: NormalizerSpec;
}

const root = protobuf.parse(SENTENCEPIECE_MODEL_PROTO, { keepCase: false }).root;
const ModelProtoType = root.lookupType('sentencepiece.ModelProto');
const SentencePieceType = root.lookupType('sentencepiece.ModelProto.SentencePiece');

/** The proto2 default of every TrainerSpec / NormalizerSpec field, for readers of absent fields. */
export const TRAINER_SPEC_DEFAULTS = defaultsOf('sentencepiece.TrainerSpec') as Required<Omit<TrainerSpec, '$unknowns'>>;
export const NORMALIZER_SPEC_DEFAULTS = defaultsOf('sentencepiece.NormalizerSpec') as Required<Omit<NormalizerSpec, '$unknowns'>>;

function defaultsOf(typeName: string): Record<string, unknown> {
  const type = root.lookupType(typeName);
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    field.resolve();
    out[field.name] = field.repeated ? [] : field.defaultValue;
  }
  return out;
}

/**
 * Parse the bytes of a SentencePiece `.model` file. Throws ModelFormatError when the bytes are not
 * a protobuf ModelProto (wrong file, truncated file) or have no pieces.
 */
export function parseModelProto(bytes: Uint8Array, source = 'input'): ModelProto {
  if (bytes.length === 0) {
    throw new ModelFormatError(`${source} is empty; expected a SentencePiece .model file`);
  }
  let message: protobuf.Message;
  try {
    const reader = protobuf.Reader.create(bytes);
    reader.discardUnknown = false;
    message = ModelProtoType.decode(reader);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ModelFormatError(`${source} is not a SentencePiece model (protobuf decode failed: ${why}); the file may be truncated or of another format`);
  }
  const proto = message as unknown as ModelProto;
  checkStructure(proto, source);
  // SentencePiece writes the specs after the pieces; a file cut between two pieces still decodes,
  // so a missing spec is how truncation shows.
  if (!Object.hasOwn(proto, 'trainerSpec') || !Object.hasOwn(proto, 'normalizerSpec')) {
    throw new ModelFormatError(
      `${source} is not a SentencePiece model: it has no trainer_spec/normalizer_spec after its ${proto.pieces.length} pieces; the file is truncated or incomplete`,
    );
  }
  return proto;
}

/** Serialize a ModelProto (decoded or built by hand) to the bytes of a `.model` file. */
export function serializeModelProto(proto: ModelProto): Uint8Array {
  const bytes = ModelProtoType.encode(proto as unknown as protobuf.Message).finish();
  // protobufjs may hand out a view into a larger pooled buffer; return exactly the message bytes.
  return new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Build a SentencePiece message with exactly the given fields present (nothing else on the wire). */
export function createPiece(fields: SentencePiece): SentencePiece {
  return SentencePieceType.create(fields) as unknown as SentencePiece;
}

/**
 * Resolve a tokenizer location: a `.model` file, or a folder holding `tokenizer.model`
 * (a Hugging Face LlamaTokenizer folder).
 */
export async function resolveModelPath(pathOrDir: string): Promise<string> {
  let stat: Awaited<ReturnType<typeof fs.stat>>;
  try {
    stat = await fs.stat(pathOrDir);
  } catch {
    throw new ModelFormatError(`${pathOrDir} does not exist; pass a SentencePiece .model file or a folder with tokenizer.model`);
  }
  if (stat.isDirectory()) {
    const inner = path.join(pathOrDir, 'tokenizer.model');
    try {
      await fs.access(inner);
    } catch {
      throw new ModelFormatError(`${pathOrDir} is a folder without tokenizer.model; pass a SentencePiece .model file or a Hugging Face tokenizer folder`);
    }
    return inner;
  }
  return pathOrDir;
}

/** Read and parse a `.model` file, or the `tokenizer.model` of a folder. */
export async function readModelProto(pathOrDir: string): Promise<ModelProto> {
  const file = await resolveModelPath(pathOrDir);
  await refuseSpecialFile(file);
  return parseModelProto(await fs.readFile(file), file);
}

/** Checks that do not depend on what the model will be used for: the bytes are a ModelProto. */
function checkStructure(proto: ModelProto, source: string): void {
  if (!proto.pieces || proto.pieces.length === 0) {
    throw new ModelFormatError(`${source} has no pieces; it is not a SentencePiece model`);
  }
  for (let i = 0; i < proto.pieces.length; i++) {
    const p = proto.pieces[i];
    if (typeof p.piece !== 'string' || p.piece.length === 0) {
      throw new ModelFormatError(`${source}: piece ${i} is empty; it is not a valid SentencePiece model`);
    }
  }
}

/**
 * The checks SentencePiece itself makes when loading a model (so a bad model is reported here with
 * a clear message instead of aborting inside the wasm runtime): unique pieces, exactly one UNKNOWN
 * piece, known piece types.
 */
export function validateModelProto(proto: ModelProto, source = 'model'): void {
  checkStructure(proto, source);
  const seen = new Map<string, number>();
  let unknownCount = 0;
  const validTypes = new Set<number>(Object.values(PieceType));
  proto.pieces.forEach((p, i) => {
    const piece = p.piece as string;
    const before = seen.get(piece);
    if (before !== undefined) {
      throw new ModelFormatError(`${source}: piece ${JSON.stringify(piece)} appears twice (ids ${before} and ${i})`);
    }
    seen.set(piece, i);
    const type = p.type ?? PieceType.NORMAL;
    if (!validTypes.has(type)) {
      throw new ModelFormatError(`${source}: piece ${i} has unknown type ${type}`);
    }
    if (type === PieceType.UNKNOWN) unknownCount++;
  });
  if (unknownCount !== 1) {
    throw new ModelFormatError(`${source}: expected exactly one UNKNOWN (<unk>) piece, found ${unknownCount}`);
  }
}

/** The model type (UNIGRAM, BPE, …) as a name. */
export function modelTypeName(proto: ModelProto): string {
  const type = proto.trainerSpec?.modelType ?? ModelType.UNIGRAM;
  const name = Object.entries(ModelType).find(([, v]) => v === type)?.[0];
  return name ?? `unknown (${type})`;
}

/** A piece type as a name. */
export function pieceTypeName(type: number | undefined): string {
  const t = type ?? PieceType.NORMAL;
  return Object.entries(PieceType).find(([, v]) => v === t)?.[0] ?? `unknown (${t})`;
}
