/**
 * One supervised fine-tuning example, as build_dataset.py builds it:
 *   source ids = [BOS] + encode(prompt)          (labels -100)
 *   target ids = encode(output) + [EOS]          (labels = ids)
 *   input_ids = (source + target)[:maxSeqLength], labels likewise — the concatenation is cut at the
 *   end, so a long prompt can leave no target at all (the reference does the same).
 */
import { UsageError } from './errors.js';
import { formatPrompt, resolveTemplate, type PromptTemplate } from './template.js';
import type { EncodingTokenizer } from './tokenizer.js';

export const IGNORE_INDEX = -100;
export const DEFAULT_MAX_SEQ_LENGTH = 512;

export interface AlpacaRecord {
  instruction: string;
  input?: string;
  output: string;
}

export interface SftExample {
  inputIds: number[];
  labels: number[];
}

export interface SftOptions {
  /** Truncate input_ids and labels to this many tokens (default 512, the recipe's value). */
  maxSeqLength?: number;
  /** A template, a template name, or a custom text with {instruction} (default: the reference). */
  template?: PromptTemplate | string;
}

export function buildSftExample(rec: AlpacaRecord, tok: EncodingTokenizer, opts: SftOptions = {}): SftExample {
  const maxSeqLength = opts.maxSeqLength ?? DEFAULT_MAX_SEQ_LENGTH;
  if (!(maxSeqLength >= 1)) throw new UsageError(`maxSeqLength must be a positive integer, got ${maxSeqLength}`);
  const template = resolveTemplate(opts.template);
  const source = [tok.bosId, ...tok.encode(formatPrompt(rec, template))];
  const target = tok.encode(rec.output);
  target.push(tok.eosId);

  const total = Math.min(source.length + target.length, maxSeqLength);
  const inputIds = new Array<number>(total);
  const labels = new Array<number>(total);
  for (let i = 0; i < total; i++) {
    if (i < source.length) {
      inputIds[i] = source[i];
      labels[i] = IGNORE_INDEX;
    } else {
      inputIds[i] = labels[i] = target[i - source.length];
    }
  }
  return { inputIds, labels };
}
