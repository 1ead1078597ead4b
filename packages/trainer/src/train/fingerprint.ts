/**
 * A cheap fingerprint of a base model, recorded in every checkpoint so that a resume on another base
 * model of the same shapes is refused (a checkpoint's adapter or embeddings mean nothing on top of
 * other weights, and nothing else would notice: the shapes all fit).
 *
 *   sha256( architecture fields of config.json (sizes, heads, norm eps, rope, tying, vocabulary)
 *           + for every weight, in name order: its name, shape and 16 float32 values at evenly spaced
 *             positions (first and last included) )                              → 16 hex digits
 *
 * The values are read from the model as loaded (float32, before any vocabulary resize), so the same
 * weights stored sharded or not, or widened from F16 / BF16 to F32, give the same fingerprint; a model
 * whose weights differ in one of the sampled positions of any tensor — a different initialisation,
 * another fine-tune, a merged adapter, or a rounding to F16 — gives another. Cost: one asynchronous
 * read per weight, sampled in JS (on native / cpu the read is the weight's own array; on wasm a copy of
 * one weight at a time). Not a device gather: on webgpu that would move the freshly loaded weights to
 * the GPU, and the vocabulary resize that follows reads them synchronously from the CPU side.
 */
import { createHash } from 'node:crypto';
import type { LlamaModel } from '../model/llama.js';

/** Values sampled per weight. */
export const FINGERPRINT_SAMPLES = 16;

export async function baseModelFingerprint(model: LlamaModel): Promise<string> {
  const c = model.config;
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      hidden: c.hiddenSize,
      intermediate: c.intermediateSize,
      layers: c.numHiddenLayers,
      heads: c.numAttentionHeads,
      kvHeads: c.numKeyValueHeads,
      eps: c.rmsNormEps,
      theta: c.ropeTheta,
      scaling: c.ropeScaling,
      tied: c.tieWordEmbeddings,
      vocab: c.vocabSize,
      positions: c.maxPositionEmbeddings,
    }),
  );
  const vars = model.namedVariables((n) => !n.includes('.lora_'));
  for (const name of [...vars.keys()].sort()) {
    const v = vars.get(name)!;
    const n = v.size;
    const count = Math.min(FINGERPRINT_SAMPLES, n);
    const all = (await v.data()) as Float32Array;
    const values = Float32Array.from({ length: count }, (_, k) => all[count === 1 ? 0 : Math.round((k * (n - 1)) / (count - 1))]!);
    h.update(`${name}\0${v.shape.join('x')}\0`);
    h.update(new Uint8Array(values.buffer));
  }
  return h.digest('hex').slice(0, 16);
}
