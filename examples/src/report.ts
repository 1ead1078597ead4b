/** report.md of a recipe run: the numbers each phase produced, the plots, and the generations. */
import path from 'node:path';
import type { Preset } from './presets.js';
import { writeFileAtomicSync } from '@cllama/core';
import type { PhaseRecord } from './run-state.js';

type Results = Record<string, unknown>;
interface Score {
  loss: number;
  perplexity: number;
  tokens: number;
}

export interface ReportInput {
  name: string;
  preset: Preset;
  backend: string;
  phases: Record<string, PhaseRecord>;
  base: Results;
  vocab: Results;
  stage1: Results;
  stage2: Results;
  sft: Results;
  merged: Results;
}

const f = (x: unknown, digits = 4) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—');
const quote = (s: string) => (s.trim() === '' ? '_(empty)_' : s.replace(/\|/g, '\\|').replace(/\n/g, '<br>'));

export function renderReport(r: ReportInput): string {
  const s1 = r.stage1 as { heldoutBefore: Score; heldoutAfter: Score; evalLosses: Array<{ step: number; loss: number }> };
  const s2 = r.stage2 as { heldoutAfter: Score; evalLosses: Array<{ step: number; loss: number }> };
  const sft = r.sft as { trainExamples: number; evalExamples: number; evalLosses: Array<{ step: number; loss: number }> };
  const m = r.merged as { heldoutAfter: Score; generations: Array<{ instruction: string; beforeSft: string; afterSft: string }> };
  const v = r.vocab;
  const total = Object.values(r.phases).reduce((n, ph) => n + ph.seconds, 0);
  const lines: string[] = [];
  lines.push(`# Recipe run '${r.name}'`, '');
  lines.push(`Preset **${r.preset.name}**, backend **${r.backend}**, total wall time **${(total / 60).toFixed(1)} min**.`, '');

  lines.push('## Wall time per phase', '', '| phase | seconds |', '|---|---:|');
  for (const [name, ph] of Object.entries(r.phases)) lines.push(`| ${name} | ${ph.seconds.toFixed(1)} |`);
  lines.push('');

  lines.push('## 0. Base model', '');
  const b = r.base;
  lines.push(
    `${String(b.source)}: hidden ${String(b.hiddenSize)}, ${String(b.layers)} layers, vocab ${String(b.vocabSize)}` +
      (b.parameters
        ? `, ${(Number(b.parameters) / 1e6).toFixed(2)} M parameters, ${String(b.steps)} steps (eval loss ${f(b.evalLossFirst)} → ${f(b.evalLossLast)}).`
        : '.'),
    '',
  );
  if (b.parameters) lines.push('![base pre-training](00-base/training_plot.svg)', '');

  lines.push('## 1. Vocabulary expansion', '');
  lines.push(
    `Chinese ${String(v.modelType)} SentencePiece model, ${String(v.chineseVocabSize)} pieces, trained on ${String(v.trainLines)} lines; merged into the base tokenizer (added pieces get distinct scores so tokenizer.json agrees with SentencePiece), + [PAD].`,
    '',
  );
  lines.push('| tokenizer | vocabulary | tokens per Chinese character (held out) |', '|---|---:|---:|');
  lines.push(`| base | ${String(v.baseVocab)} | ${f(v.tokensPerCharBefore)} |`);
  lines.push(`| merged | ${String(v.mergedVocab)} | ${f(v.tokensPerCharAfter)} |`);
  lines.push('', `Sequences are **${f(v.reduction, 2)}×** shorter on held-out Chinese text.`, '');

  lines.push('## 2–4. Held-out Chinese perplexity (merged tokenizer)', '');
  lines.push('| after | loss | perplexity | tokens |', '|---|---:|---:|---:|');
  const row = (label: string, sc?: Score) => lines.push(`| ${label} | ${f(sc?.loss)} | ${f(sc?.perplexity, 2)} | ${sc?.tokens ?? '—'} |`);
  row('base, embeddings resized (before stage 1)', s1.heldoutBefore);
  row('stage 1 (embeddings)', s1.heldoutAfter);
  row('stage 2 (LoRA + embeddings/lm_head)', s2.heldoutAfter);
  row('SFT, merged model', m.heldoutAfter);
  lines.push('');
  lines.push('![stage 1](02-stage1/training_plot.svg)', '', '![stage 2](03-stage2/training_plot.svg)', '');

  lines.push('## 4. Instruction fine-tuning', '');
  const first = sft.evalLosses[0];
  const last = sft.evalLosses.at(-1);
  lines.push(
    `${sft.trainExamples} training / ${sft.evalExamples} eval examples mixed from Alpaca-zh and pCLUE (04-data/mix_report.md). ` +
      `Eval loss ${f(first?.loss)} (step ${first?.step ?? '—'}) → ${f(last?.loss)} (step ${last?.step ?? '—'}).`,
    '',
  );
  lines.push('![SFT](04-sft/training_plot.svg)', '');

  lines.push('## 5. Generations (Alpaca template; temperature 0.7, top-k 40, top-p 0.9, repetition penalty 1.3, seed 1)', '');
  lines.push('| instruction | before SFT (stage 2) | after SFT (merged) |', '|---|---|---|');
  for (const g of m.generations) lines.push(`| ${quote(g.instruction)} | ${quote(g.beforeSft)} | ${quote(g.afterSft)} |`);
  lines.push('');
  lines.push(
    'Outputs: ' +
      ['00-base', '01-vocab/merged', '02-stage1', '03-stage2', '04-sft', '05-merged'].map((d) => `\`${d}\``).join(', ') +
      '; metrics as JSON lines in each training folder (metrics.jsonl).',
    '',
  );
  return lines.join('\n');
}

export function writeReport(file: string, r: ReportInput): void {
  writeFileAtomicSync(path.resolve(file), renderReport(r));
}
