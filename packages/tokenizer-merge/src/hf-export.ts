/**
 * Hugging Face tokenizer folder for a LLaMA-style SentencePiece BPE model: `tokenizer.model`,
 * `tokenizer.json` (LlamaTokenizerFast layout), `tokenizer_config.json`, `special_tokens_map.json`.
 *
 * tokenizer.json is built the way transformers' LlamaConverter (convert_slow_tokenizer.py) builds
 * it from the SentencePiece model: the vocabulary is the pieces in id order; the merges are every
 * split of a piece into two pieces that are both in the vocabulary, ordered by the merged piece's
 * score (highest first), ties kept in vocabulary order, by length of the left and right part, as
 * `generate_merges` does; byte fallback on; the legacy Llama normalizer (Prepend "▁", Replace " " → "▁")
 * and decoder (Replace "▁" → " ", ByteFallback, Fuse, Strip one leading space); `<s>` prepended by
 * the post-processor. The pad token is an added token after the SentencePiece vocabulary, stored as
 * LlamaTokenizer.add_special_tokens({pad_token}) + save_pretrained store it.
 */
import { PieceType, TokenizerMergeError, serializeModelProto, validateModelProto, type ModelProto } from './proto.js';
import type { AddedToken } from './tokenizer.js';

/** HF's LlamaTokenizer defaults (model_max_length = VERY_LARGE_INTEGER = int(1e30)). */
const VERY_LARGE_INTEGER = '1000000000000000019884624838656';

export interface HfExportOptions {
  /** Pad token to add after the vocabulary; `null` for none. Default `[PAD]`. */
  padToken?: string | null;
}

export interface HfTokenizerFiles {
  'tokenizer.model': Uint8Array;
  'tokenizer.json': string;
  'tokenizer_config.json': string;
  'special_tokens_map.json': string;
}

/** The tokens HF keeps outside the BPE model: <unk>, <s>, </s> (+ pad), all special. */
export function hfAddedTokens(proto: ModelProto, padToken: string | null = '[PAD]'): AddedToken[] {
  const specials = proto.pieces
    .map((p, id) => ({ id, content: p.piece as string, type: p.type ?? PieceType.NORMAL }))
    .filter((p) => p.type === PieceType.UNKNOWN || p.type === PieceType.CONTROL || p.type === PieceType.USER_DEFINED)
    .map((p) => ({ id: p.id, content: p.content, special: p.type !== PieceType.USER_DEFINED }));
  if (padToken !== null) {
    if (padToken.length === 0) throw new TokenizerMergeError('the pad token must not be empty; use --no-pad for none');
    const existing = proto.pieces.findIndex((p) => p.piece === padToken);
    // An existing piece becomes the pad token without a new id (as add_special_tokens does).
    if (existing < 0) specials.push({ id: proto.pieces.length, content: padToken, special: true });
  }
  return specials;
}

/**
 * HF's generate_merges over the converter's vocab_scores: (left, right) pairs whose concatenation is
 * a piece, sorted by that piece's score descending; ties keep vocabulary order (Python's sort is
 * stable) after the (len(left), len(right)) tie-breakers. Lengths are in code points, as in Python.
 */
export function generateMerges(proto: ModelProto): Array<[string, string]> {
  const vocab = new Map<string, number>();
  proto.pieces.forEach((p, i) => vocab.set(p.piece as string, i));
  // LlamaConverter.vocab: the first three pieces (<unk>, <s>, </s>) get score 0.
  const scores = proto.pieces.map((p, i) => (i < 3 ? 0 : (p.score ?? 0)));
  const merges: Array<{ left: string; right: string; score: number; leftLen: number; rightLen: number }> = [];
  proto.pieces.forEach((p, id) => {
    const chars = Array.from(p.piece as string);
    const local: Array<{ left: string; right: string; leftId: number; rightId: number }> = [];
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      const leftId = vocab.get(left);
      const rightId = vocab.get(right);
      if (leftId !== undefined && rightId !== undefined) local.push({ left, right, leftId, rightId });
    }
    local.sort((a, b) => a.leftId - b.leftId || a.rightId - b.rightId);
    for (const m of local) {
      merges.push({
        left: m.left,
        right: m.right,
        score: scores[id],
        leftLen: Array.from(m.left).length,
        rightLen: Array.from(m.right).length,
      });
    }
  });
  // sorted(key=(score, len(l), len(r)), reverse=True) — stable, so equal keys keep their order.
  merges.sort((a, b) => b.score - a.score || b.leftLen - a.leftLen || b.rightLen - a.rightLen);
  return merges.map((m) => [m.left, m.right]);
}

/** The tokenizer.json object (LlamaTokenizerFast, legacy normalizer) for a SentencePiece BPE model. */
export function buildTokenizerJson(proto: ModelProto, options: HfExportOptions = {}): Record<string, unknown> {
  validateModelProto(proto);
  const type = proto.trainerSpec?.modelType ?? 1;
  if (type !== 2) {
    throw new TokenizerMergeError(`tokenizer.json export needs a BPE model (like LLaMA's); this model's type is ${type === 1 ? 'UNIGRAM' : type}`);
  }
  const padToken = options.padToken === undefined ? '[PAD]' : options.padToken;
  const addedTokens = hfAddedTokens(proto, padToken);
  const vocab: Record<string, number> = {};
  proto.pieces.forEach((p, i) => {
    vocab[p.piece as string] = i;
  });
  const bosPiece = proto.pieces[proto.trainerSpec?.bosId ?? 1]?.piece ?? '<s>';
  const bosId = proto.trainerSpec?.bosId ?? 1;
  const unkPiece = proto.pieces.find((p) => p.type === PieceType.UNKNOWN)?.piece ?? '<unk>';
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens.map((t) => ({
      id: t.id,
      content: t.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: t.special,
    })),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bosPiece, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bosPiece, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bosPiece, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bosPiece]: { id: bosPiece, ids: [bosId], tokens: [bosPiece] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unkPiece,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: generateMerges(proto),
    },
  };
}

function specialTokenEntry(content: string) {
  return { content, lstrip: false, normalized: false, rstrip: false, single_word: false };
}

/** All four files of the HF folder, as bytes/text. */
export function buildHfTokenizerFiles(proto: ModelProto, options: HfExportOptions = {}): HfTokenizerFiles {
  const padToken = options.padToken === undefined ? '[PAD]' : options.padToken;
  const tokenizerJson = buildTokenizerJson(proto, { padToken });
  const added = hfAddedTokens(proto, padToken);
  const spec = proto.trainerSpec ?? {};
  const piece = (id: number | undefined, fallback: string) => (id !== undefined && id >= 0 ? (proto.pieces[id]?.piece ?? fallback) : fallback);
  const unk = proto.pieces.find((p) => p.type === PieceType.UNKNOWN)?.piece ?? '<unk>';
  const bos = piece(spec.bosId ?? 1, '<s>');
  const eos = piece(spec.eosId ?? 2, '</s>');

  const addedTokensDecoder: Record<string, unknown> = {};
  for (const t of added) addedTokensDecoder[String(t.id)] = { ...specialTokenEntry(t.content), special: t.special };
  const config: Record<string, unknown> = {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: bos,
    clean_up_tokenization_spaces: false,
    eos_token: eos,
    legacy: true,
    model_max_length: '__VERY_LARGE_INTEGER__',
    ...(padToken !== null ? { pad_token: padToken } : {}),
    sp_model_kwargs: {},
    tokenizer_class: 'LlamaTokenizer',
    unk_token: unk,
  };
  const specialMap: Record<string, unknown> = {
    bos_token: specialTokenEntry(bos),
    eos_token: specialTokenEntry(eos),
    ...(padToken !== null ? { pad_token: specialTokenEntry(padToken) } : {}),
    unk_token: specialTokenEntry(unk),
  };
  return {
    'tokenizer.model': serializeModelProto(proto),
    'tokenizer.json': JSON.stringify(tokenizerJson, null, 2) + '\n',
    'tokenizer_config.json': JSON.stringify(config, null, 2).replace('"__VERY_LARGE_INTEGER__"', VERY_LARGE_INTEGER) + '\n',
    'special_tokens_map.json': JSON.stringify(specialMap, null, 2) + '\n',
  };
}
