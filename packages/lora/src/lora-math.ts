/**
 * LoRA arithmetic on row-major Float32Arrays.
 *
 * A linear layer y = W x with W [out, in] gets a low-rank branch: y = W x + scaling · B (A x), with
 * A [r, in], B [out, r], scaling = alpha / r. Merging folds the branch into the weight:
 *   W' = W + scaling · (B · A)
 * and unmerging subtracts the same product again.
 */
import { LoraError } from './errors.js';

/**
 * PEFT's default LoRA init (LoraLayer.reset_lora_parameters with init_lora_weights=True):
 * `nn.init.kaiming_uniform_(lora_A, a=math.sqrt(5))` and `nn.init.zeros_(lora_B)`.
 * Kaiming-uniform draws from U(-bound, bound) with bound = gain · sqrt(3 / fan_in) and
 * gain = sqrt(2 / (1 + a²)); with a = √5 that is sqrt(1/3) · sqrt(3 / fan_in) = 1 / sqrt(fan_in),
 * where fan_in is A's second dimension (the layer's input features). B = 0 makes the adapted model
 * start exactly at the base model.
 */
export function initLoraPair(inFeatures: number, outFeatures: number, r: number, random: () => number): { a: Float32Array; b: Float32Array } {
  const bound = 1 / Math.sqrt(inFeatures);
  const a = new Float32Array(r * inFeatures);
  for (let i = 0; i < a.length; i++) a[i] = (random() * 2 - 1) * bound;
  return { a, b: new Float32Array(outFeatures * r) };
}

export interface LoraPair {
  /** [r, in], row-major. */
  a: Float32Array;
  /** [out, r], row-major. */
  b: Float32Array;
  r: number;
  inFeatures: number;
  outFeatures: number;
  scaling: number;
}

function checkPair(p: LoraPair): void {
  if (p.a.length !== p.r * p.inFeatures) throw new LoraError(`lora_A has ${p.a.length} values, expected r·in = ${p.r}·${p.inFeatures}`);
  if (p.b.length !== p.outFeatures * p.r) throw new LoraError(`lora_B has ${p.b.length} values, expected out·r = ${p.outFeatures}·${p.r}`);
}

/** scaling · (B · A), [out, in] row-major (accumulated in double, stored as float32 like torch's result). */
export function loraDelta(p: LoraPair): Float32Array {
  checkPair(p);
  const { a, b, r, inFeatures, outFeatures, scaling } = p;
  const delta = new Float32Array(outFeatures * inFeatures);
  const row = new Float64Array(inFeatures);
  for (let o = 0; o < outFeatures; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const bok = b[o * r + k];
      if (bok === 0) continue;
      const aRow = k * inFeatures;
      for (let i = 0; i < inFeatures; i++) row[i] += bok * a[aRow + i];
    }
    const out = o * inFeatures;
    for (let i = 0; i < inFeatures; i++) delta[out + i] = row[i] * scaling;
  }
  return delta;
}

/** W += scaling · B·A, in place. */
export function mergeLora(weight: Float32Array, p: LoraPair): Float32Array {
  if (weight.length !== p.outFeatures * p.inFeatures) {
    throw new LoraError(`weight has ${weight.length} values but the LoRA pair is for [${p.outFeatures}, ${p.inFeatures}]`);
  }
  const delta = loraDelta(p);
  for (let i = 0; i < weight.length; i++) weight[i] += delta[i];
  return weight;
}

/** W -= scaling · B·A, in place (the inverse of mergeLora up to float32 rounding). */
export function unmergeLora(weight: Float32Array, p: LoraPair): Float32Array {
  if (weight.length !== p.outFeatures * p.inFeatures) {
    throw new LoraError(`weight has ${weight.length} values but the LoRA pair is for [${p.outFeatures}, ${p.inFeatures}]`);
  }
  const delta = loraDelta(p);
  for (let i = 0; i < weight.length; i++) weight[i] -= delta[i];
  return weight;
}

/**
 * Grow a [rows, cols] matrix (embed_tokens / lm_head) to newRows rows. New rows are the mean of the
 * existing rows — the deterministic centre of transformers' mean_resizing (which adds small noise
 * around it); rows beyond the old vocabulary are usually overwritten by an adapter's modules_to_save.
 */
export function resizeRows(data: Float32Array, rows: number, cols: number, newRows: number): Float32Array {
  if (newRows < rows) throw new LoraError(`cannot shrink ${rows} rows to ${newRows}`);
  const out = new Float32Array(newRows * cols);
  out.set(data.subarray(0, rows * cols));
  if (newRows > rows && rows > 0) {
    const mean = new Float64Array(cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) mean[c] += data[r * cols + c];
    for (let c = 0; c < cols; c++) mean[c] /= rows;
    for (let r = rows; r < newRows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = mean[c];
  }
  return out;
}
