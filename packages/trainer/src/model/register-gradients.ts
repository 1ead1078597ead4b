/**
 * tfjs-core's CommonJS build ships without its gradient functions: they are registered by the
 * `@tensorflow/tfjs` union bundle (its ESM-only `dist/register_all_gradients.js` does not load in
 * Node). Importing the union package once makes tf.grads / tf.variableGrads work for every op.
 */
import '@tensorflow/tfjs';
