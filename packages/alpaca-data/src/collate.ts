/**
 * The padding collator of build_dataset.py (DataCollatorForSupervisedDataset): right-pad input ids
 * with the pad id and labels with -100 to the longest record of the batch; attention mask =
 * input_ids != pad id (exactly as the reference computes it).
 */
import { UsageError } from './errors.js';
import { IGNORE_INDEX } from './sft.js';

export interface CollateInput {
  inputIds: ArrayLike<number>;
  /** Absent for pre-training records: labels = input ids. */
  labels?: ArrayLike<number>;
}

export interface Batch {
  /** Row-major [batch, seqLen]. */
  inputIds: Int32Array;
  labels: Int32Array;
  attentionMask: Int32Array;
  batch: number;
  seqLen: number;
}

export function collate(records: readonly CollateInput[], padId: number, opts: { padToMultipleOf?: number } = {}): Batch {
  if (records.length === 0) throw new UsageError('collate: the batch is empty');
  if (!Number.isInteger(padId)) throw new UsageError(`collate: pad id must be an integer, got ${padId}`);
  let seqLen = 0;
  for (const r of records) {
    if (r.labels !== undefined && r.labels.length !== r.inputIds.length) {
      throw new UsageError(`collate: a record has ${r.inputIds.length} input ids but ${r.labels.length} labels`);
    }
    seqLen = Math.max(seqLen, r.inputIds.length);
  }
  const multiple = opts.padToMultipleOf ?? 1;
  seqLen = Math.ceil(seqLen / multiple) * multiple;
  const batch = records.length;
  const inputIds = new Int32Array(batch * seqLen).fill(padId);
  const labels = new Int32Array(batch * seqLen).fill(IGNORE_INDEX);
  const attentionMask = new Int32Array(batch * seqLen);
  records.forEach((r, b) => {
    const row = b * seqLen;
    const lab = r.labels ?? r.inputIds;
    for (let i = 0; i < r.inputIds.length; i++) {
      inputIds[row + i] = r.inputIds[i];
      labels[row + i] = lab[i];
    }
  });
  for (let i = 0; i < inputIds.length; i++) attentionMask[i] = inputIds[i] !== padId ? 1 : 0;
  return { inputIds, labels, attentionMask, batch, seqLen };
}
