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
 *
 * The same rule says when a kernel may rewrite an input in place (AdamW's moments and weights: no new
 * arrays every step): the array is `exclusive` to that tensor's data, and the kernel hands it over to
 * the output tensor it makes from it (`handOver`), whose registration takes it; the old tensor's
 * release then leaves it alone. An owner is a tensor's data id, so a release is only honoured from the
 * data the array currently backs.
 */
/** The owner of an array allocated here that no tensor's data holds yet. */
const UNREGISTERED = Symbol('unregistered');

export class ArrayPool {
  private readonly free = new Map<number, Float32Array[]>();
  private readonly order: Float32Array[] = [];
  private pooledBytes = 0;
  /** Arrays allocated here → the data id of the one tensor data they back (UNREGISTERED until then). */
  private readonly owner = new WeakMap<Float32Array, object | typeof UNREGISTERED>();
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
      this.owner.set(reused, UNREGISTERED);
      return reused;
    }
    const a = new Float32Array(length);
    this.owner.set(a, UNREGISTERED);
    this.buffers.set(a.buffer, a);
    return a;
  }

  /** The tensor data `dataId` is being set to `values` (backend write). */
  registered(values: unknown, dataId: object): void {
    if (!ArrayBuffer.isView(values)) return;
    const array = this.buffers.get(values.buffer);
    if (!array) return;
    const owner = this.owner.get(array);
    if (owner === undefined) return;
    // a second tensor on the same array, or any tensor on a view of it: shared from now on
    if (values !== array || owner !== UNREGISTERED) this.owner.delete(array);
    else this.owner.set(array, dataId);
  }

  /** `values` was handed out of the backend (a read): never recycled, never rewritten in place. */
  escaped(values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const array = this.buffers.get(values.buffer);
    if (array) this.owner.delete(array);
  }

  /** True when `values` was allocated here, backs exactly the tensor data `dataId` and was never read out. */
  exclusive(values: unknown, dataId: object): boolean {
    return values instanceof Float32Array && this.owner.get(values) === dataId;
  }

  /** `values`, exclusive to its tensor data, is to back the next tensor data registered on it instead. */
  handOver(values: Float32Array): void {
    if (this.owner.get(values) !== undefined) this.owner.set(values, UNREGISTERED);
  }

  /** The tensor data `dataId`, whose values were `values`, is gone. */
  released(values: unknown, dataId: object): void {
    if (!(values instanceof Float32Array) || this.owner.get(values) !== dataId) return;
    this.owner.delete(values);
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
