/**
 * Keys and values of past positions, per layer, for incremental decoding. A forward pass with a
 * cache appends the new positions (`append`, called by the attention of each layer); `commit()` then
 * makes them the cache's content and frees the previous tensors. Tensors are kept out of tf.tidy.
 */
import * as tf from '@tensorflow/tfjs-core';

export class KVCache {
  /** Number of cached positions. */
  length = 0;
  private keys: Array<tf.Tensor | undefined>;
  private values: Array<tf.Tensor | undefined>;
  private pendingKeys: Array<tf.Tensor | undefined>;
  private pendingValues: Array<tf.Tensor | undefined>;

  constructor(readonly numLayers: number) {
    this.keys = new Array(numLayers).fill(undefined);
    this.values = new Array(numLayers).fill(undefined);
    this.pendingKeys = new Array(numLayers).fill(undefined);
    this.pendingValues = new Array(numLayers).fill(undefined);
  }

  /** Returns past ⧺ new keys and values ([batch, kvHeads, positions, headDim]) for `layer`. */
  append(layer: number, k: tf.Tensor, v: tf.Tensor): [tf.Tensor, tf.Tensor] {
    const pk = this.keys[layer];
    const pv = this.values[layer];
    const fullK = pk ? tf.concat([pk, k], 2) : k;
    const fullV = pv ? tf.concat([pv, v], 2) : v;
    this.pendingKeys[layer]?.dispose();
    this.pendingValues[layer]?.dispose();
    this.pendingKeys[layer] = tf.keep(fullK);
    this.pendingValues[layer] = tf.keep(fullV);
    return [fullK, fullV];
  }

  /** Adopts the keys/values appended by the last forward pass. */
  commit(): void {
    for (let l = 0; l < this.numLayers; l++) {
      const k = this.pendingKeys[l];
      const v = this.pendingValues[l];
      if (!k || !v) throw new Error(`KVCache.commit: layer ${l} appended nothing`);
      this.keys[l]?.dispose();
      this.values[l]?.dispose();
      this.keys[l] = k;
      this.values[l] = v;
      this.pendingKeys[l] = undefined;
      this.pendingValues[l] = undefined;
    }
    this.length = this.keys[0]!.shape[2]!;
  }

  dispose(): void {
    for (const list of [this.keys, this.values, this.pendingKeys, this.pendingValues]) {
      for (let l = 0; l < list.length; l++) {
        list[l]?.dispose();
        list[l] = undefined;
      }
    }
    this.length = 0;
  }
}
