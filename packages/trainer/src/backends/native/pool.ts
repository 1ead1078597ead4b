/**
 * Recycled output arrays for the native backend.
 *
 * Every tfjs kernel returns a new tensor, and on a JS-memory backend that is a new Float32Array: the
 * OS hands out fresh zeroed pages (measured: a 51 MB array costs ~45 ms of page faults here, as much
 * as the pass over it), and the dead arrays wait for V8's collector, which lets the process's memory
 * run well past what is live. The native backend's own kernels take their outputs from this pool, and
 * an array comes back to it when the tensor owning it is disposed.
 *
 * An array is only recycled when nothing else can still see it:
 *   - it was allocated here (arrays of user data or of tfjs-cpu's kernels are never taken);
 *   - it backs exactly one tensor's data, whole (a second tensor written over it or over a view of
 *     it, as tfjs-cpu's slice does, makes it shared: never recycled);
 *   - it was never read out (dataSync / data() return the array itself on this backend).
 * Arrays from the pool hold stale values: every user overwrites all of its output.
 * The pool keeps at most `capBytes`, evicting the oldest entries.
 */
export class ArrayPool {
  private readonly free = new Map<number, Float32Array[]>();
  private readonly order: Float32Array[] = [];
  private pooledBytes = 0;
  /** Arrays allocated here → the tensors registered on them (0 until registered). */
  private readonly owned = new WeakMap<Float32Array, number>();
  /** The buffers of owned arrays, to notice views of them. */
  private readonly buffers = new WeakMap<ArrayBufferLike, Float32Array>();

  constructor(readonly capBytes: number) {}

  /** A float32 array of `length` elements, with arbitrary contents. */
  alloc(length: number): Float32Array {
    const list = this.free.get(length);
    const reused = list?.pop();
    if (reused) {
      this.pooledBytes -= reused.byteLength;
      this.order.splice(this.order.indexOf(reused), 1);
      this.owned.set(reused, 0);
      return reused;
    }
    const a = new Float32Array(length);
    this.owned.set(a, 0);
    this.buffers.set(a.buffer, a);
    return a;
  }

  /** A tensor's data is being set to `values` (backend write). */
  registered(values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const owner = this.buffers.get(values.buffer);
    if (!owner) return;
    const count = this.owned.get(owner);
    if (count === undefined) return;
    // a second tensor on the same array, or any tensor on a view of it: shared from now on
    if (values !== owner || count > 0) this.owned.delete(owner);
    else this.owned.set(owner, 1);
  }

  /** `values` was handed out of the backend (a read): never recycled. */
  escaped(values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const owner = this.buffers.get(values.buffer);
    if (owner) this.owned.delete(owner);
  }

  /** The tensor whose data was `values` is gone. */
  released(values: unknown): void {
    if (!(values instanceof Float32Array) || this.owned.get(values) !== 1) return;
    this.owned.delete(values);
    if (values.byteLength > this.capBytes) return;
    let list = this.free.get(values.length);
    if (!list) this.free.set(values.length, (list = []));
    list.push(values);
    this.order.push(values);
    this.pooledBytes += values.byteLength;
    while (this.pooledBytes > this.capBytes) {
      const oldest = this.order.shift()!;
      const l = this.free.get(oldest.length)!;
      l.splice(l.indexOf(oldest), 1);
      this.pooledBytes -= oldest.byteLength;
    }
  }

  /** Bytes held for reuse. */
  get bytes(): number {
    return this.pooledBytes;
  }

  clear(): void {
    this.free.clear();
    this.order.length = 0;
    this.pooledBytes = 0;
  }
}
