/**
 * Per-item quality filters, after Stanford Alpaca's generate_instruction.py: instruction length limits,
 * a keyword blacklist (things a text-only model cannot do: images, files, audio…), no instruction
 * starting with punctuation or "Write a program", and — for English — none starting with a non-ASCII
 * character. Lengths are counted in "units": one per CJK character plus one per run of other
 * letters/digits, so the same limits make sense for Chinese and English text.
 */
import type { Item } from './parse.js';

/** Stanford Alpaca's blacklist, verbatim in meaning (word-boundary, case-insensitive). */
export const STANFORD_BLACKLIST: readonly string[] = [
  'image',
  'images',
  'graph',
  'graphs',
  'picture',
  'pictures',
  'file',
  'files',
  'map',
  'maps',
  'draw',
  'plot',
  'go to',
  'video',
  'audio',
  'music',
  'flowchart',
  'diagram',
];

/**
 * Chinese counterparts used for --lang zh (substring match, Chinese has no word boundaries). "音乐" is
 * left out on purpose: music is one of the prompt's topics and "写一首关于音乐的诗" is fine for a text model.
 */
export const CHINESE_BLACKLIST: readonly string[] = [
  '图片',
  '图像',
  '照片',
  '画一',
  '画出',
  '绘制',
  '画图',
  '图表',
  '示意图',
  '流程图',
  '地图',
  '视频',
  '音频',
  '录音',
  '附件',
  '文件',
];

export interface FilterOptions {
  instructionMinUnits: number;
  instructionMaxUnits: number;
  inputMaxUnits: number;
  outputMinUnits: number;
  outputMaxUnits: number;
  /** English words/phrases, matched on word boundaries, case-insensitively */
  blacklistWords: readonly string[];
  /** substrings (for scripts without word boundaries) */
  blacklistSubstrings: readonly string[];
  /** Stanford's "starts with a non-English character" rule; only sensible for English crawls */
  requireAsciiStart: boolean;
}

export function defaultFilterOptions(lang: 'zh' | 'en' = 'zh'): FilterOptions {
  return {
    instructionMinUnits: 4, // Stanford drops instructions of <= 3 words
    instructionMaxUnits: 150,
    inputMaxUnits: 1024,
    outputMinUnits: 1,
    outputMaxUnits: 2048,
    blacklistWords: STANFORD_BLACKLIST,
    blacklistSubstrings: lang === 'zh' ? CHINESE_BLACKLIST : [],
    requireAsciiStart: lang === 'en',
  };
}

const CJK = /[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]/u;
const UNIT = /[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]|(?:(?![\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af])[\p{L}\p{N}])+/gu;

/** Length in units: each CJK character counts 1, each run of other letters/digits counts 1. */
export function textUnits(s: string): number {
  let n = 0;
  UNIT.lastIndex = 0;
  while (UNIT.exec(s)) n++;
  return n;
}

export type FilterRejectReason =
  | 'instruction-too-short'
  | 'instruction-too-long'
  | 'input-too-long'
  | 'output-too-short'
  | 'output-too-long'
  | 'blacklisted'
  | 'starts-with-punctuation'
  | 'write-a-program'
  | 'non-ascii-start';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class ItemFilter {
  private readonly wordRe: RegExp | undefined;
  constructor(readonly options: FilterOptions) {
    const words = options.blacklistWords.filter((w) => w.trim());
    this.wordRe = words.length ? new RegExp(`\\b(?:${words.map(escapeRegExp).join('|')})\\b`, 'i') : undefined;
  }

  /** undefined = the item passes; otherwise why it is rejected. */
  check(item: Item): FilterRejectReason | undefined {
    const o = this.options;
    const inst = item.instruction;
    const iu = textUnits(inst);
    if (iu < o.instructionMinUnits) return 'instruction-too-short';
    if (iu > o.instructionMaxUnits) return 'instruction-too-long';
    if (textUnits(item.input) > o.inputMaxUnits) return 'input-too-long';
    const ou = textUnits(item.output);
    if (ou < o.outputMinUnits) return 'output-too-short';
    if (ou > o.outputMaxUnits) return 'output-too-long';
    if (this.wordRe?.test(inst)) return 'blacklisted';
    if (o.blacklistSubstrings.some((w) => inst.includes(w))) return 'blacklisted';
    if (inst.startsWith('Write a program')) return 'write-a-program';
    if (/^[\p{P}\p{S}]/u.test(inst)) return 'starts-with-punctuation';
    if (o.requireAsciiStart && (inst.charCodeAt(0) > 127 || CJK.test(inst[0]))) return 'non-ascii-start';
    return undefined;
  }
}

/**
 * The dedupe key of an instruction: NFKC (full-width → ASCII), lower case, whitespace and punctuation
 * removed — so "翻译这句话。" and "翻译这句话" or "Translate  this!" and "translate this" collide.
 */
export function normalizeInstruction(s: string): string {
  return s
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s\p{P}\p{S}]+/gu, '');
}
