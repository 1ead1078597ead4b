import { defineCommand } from '@cllama/core';
import { modelTypeName, pieceTypeName, readModelProto, resolveModelPath, PieceType } from '../proto.js';
import { readHfAddedTokens } from '../tokenizer.js';
import { promises as fs } from 'node:fs';

export interface InspectReport {
  path: string;
  modelType: string;
  pieces: number;
  addedTokens: Array<{ id: number; content: string }>;
  vocabSize: number;
  specialPieces: Array<{ id: number; piece: string; type: string }>;
  byteFallback: boolean;
  normalizer: {
    name: string;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
    escapeWhitespaces: boolean;
  };
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  padToken?: string;
}

/** What `inspect` prints: model type, piece count, special pieces, normalizer. */
export async function inspectModel(pathOrDir: string): Promise<InspectReport> {
  const modelPath = await resolveModelPath(pathOrDir);
  const proto = await readModelProto(pathOrDir);
  const isDir = (await fs.stat(pathOrDir)).isDirectory();
  const hf = isDir ? await readHfAddedTokens(pathOrDir, proto.pieces.length) : {};
  const spec = proto.trainerSpec ?? {};
  const norm = proto.normalizerSpec ?? {};
  const special = proto.pieces
    .map((p, id) => ({ id, piece: p.piece as string, type: p.type ?? PieceType.NORMAL }))
    .filter((p) => p.type === PieceType.UNKNOWN || p.type === PieceType.CONTROL || p.type === PieceType.USER_DEFINED)
    .map((p) => ({ ...p, type: pieceTypeName(p.type) }));
  const added = (hf.addedTokens ?? []).map((t) => ({ id: t.id, content: t.content }));
  return {
    path: modelPath,
    modelType: modelTypeName(proto),
    pieces: proto.pieces.length,
    addedTokens: added,
    vocabSize: proto.pieces.length + added.length,
    specialPieces: special,
    byteFallback: spec.byteFallback ?? false,
    normalizer: {
      name: norm.name ?? '',
      addDummyPrefix: norm.addDummyPrefix ?? true,
      removeExtraWhitespaces: norm.removeExtraWhitespaces ?? true,
      escapeWhitespaces: norm.escapeWhitespaces ?? true,
    },
    unkId: spec.unkId ?? 0,
    bosId: spec.bosId ?? 1,
    eosId: spec.eosId ?? 2,
    padId: spec.padId ?? -1,
    padToken: hf.padToken,
  };
}

export function formatInspect(r: InspectReport): string {
  const lines = [
    `model:       ${r.path}`,
    `type:        ${r.modelType}${r.byteFallback ? ' (byte fallback)' : ''}`,
    `pieces:      ${r.pieces.toLocaleString('en-US')}`,
  ];
  if (r.addedTokens.length > 0) {
    lines.push(`added:       ${r.addedTokens.map((t) => `${t.content} (${t.id})`).join(', ')}`);
    lines.push(`vocab size:  ${r.vocabSize.toLocaleString('en-US')}`);
  }
  lines.push(`special:     ${r.specialPieces.map((p) => `${p.piece} (${p.id}, ${p.type})`).join(', ') || 'none'}`);
  lines.push(`ids:         unk=${r.unkId} bos=${r.bosId} eos=${r.eosId} pad=${r.padId}${r.padToken ? ` pad_token=${r.padToken}` : ''}`);
  const n = r.normalizer;
  lines.push(
    `normalizer:  ${n.name || '(none)'}  add_dummy_prefix=${n.addDummyPrefix} remove_extra_whitespaces=${n.removeExtraWhitespaces} escape_whitespaces=${n.escapeWhitespaces}`,
  );
  return lines.join('\n');
}

export const inspectCommand = defineCommand<{ model: string; json?: boolean }>({
  meta: {
    name: 'inspect',
    description: 'show model type, piece count, special pieces and normalizer of a .model file or HF folder',
    example: 'cllama-tokenizer inspect merged/ --json',
  },
  args: {
    model: { type: 'positional', description: 'SentencePiece .model file, or folder with tokenizer.model' },
    json: { type: 'boolean', description: 'print one JSON object' },
  },
  run: async ({ args }) => {
    const report = await inspectModel(args.model);
    process.stdout.write((args.json ? JSON.stringify(report, null, 2) : formatInspect(report)) + '\n');
  },
});
