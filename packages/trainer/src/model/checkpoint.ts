/**
 * Gradient checkpointing (activation recomputation, Chen et al. 2016; HF's `gradient_checkpointing`):
 * a segment of the forward pass keeps only its inputs, and its activations are computed again in the
 * backward pass, when they are needed.
 *
 *   forward:  y = f(x)                with the tape off: f's intermediates are freed at once
 *   backward: dx, dθ = vjp(f, x, θ; dy)  f runs again under a tape of its own
 *
 * How this version differs: tfjs has no checkpoint op, so the segment is a tf.customGrad whose inputs
 * are x and the segment's trainable variables θ (that is how tf.variableGrads finds them), and whose
 * gradient is tf.grads of the segment. That inner tf.grads runs while tfjs back-propagates the outer
 * tape; tfjs keeps one active tape per engine and, at gradient depth 0, tf.grads replaces it and
 * clears it when done. The outer tape is set aside and put back around the inner call, so the outer
 * pass still releases its own saved tensors when it ends.
 *
 * `f` must compute the same function both times: anything random in it (dropout) has to replay the
 * same draws (LlamaModel records and replays its LoRA dropout seeds).
 */
import * as tf from '@tensorflow/tfjs-core';

interface EngineTape {
  state: { activeTape: unknown };
}

/** d f(x, …)/d [x, ...variables] · dy, recomputing f under its own tape. */
function recomputeGradients(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, variables: tf.Variable[], dy: tf.Tensor): tf.Tensor[] {
  const engine = tf.engine() as unknown as EngineTape;
  const outerTape = engine.state.activeTape;
  try {
    return tf.grads((input: tf.Tensor) => f(input))([x, ...variables], dy);
  } finally {
    engine.state.activeTape = outerTape;
  }
}

/**
 * `f(x)` as a checkpointed segment: the value of f(x), differentiable w.r.t. x and `variables` (the
 * trainable variables f reads), holding only x (and the tensors in `keep`, which f also reads) for
 * the backward pass. `f` receives x and the kept tensors as the backward pass sees them.
 */
export function checkpointed(f: (x: tf.Tensor, kept: tf.Tensor[]) => tf.Tensor, x: tf.Tensor, variables: tf.Variable[], keep: tf.Tensor[] = []): tf.Tensor {
  const segment = tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const value = f(x, keep);
    save([x, ...keep]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [input, ...kept] = saved;
        return recomputeGradients((i) => f(i, kept), input!, variables, dy);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (segment as unknown as (...inputs: tf.Tensor[]) => tf.Tensor)(x, ...variables);
}
