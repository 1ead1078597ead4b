/**
 * `decoderLayerOnnx` in the public API: the native backend's decoder-layer graphs (forward and
 * backward of one LLaMA layer as ONNX bytes, backends/native/decoder-layer-graph.ts) and the small
 * graph writer they are built with, for benches that run them on other onnxruntime execution
 * providers (bench/gpu-kit's `ortgpu` part: ORT's WebGPU EP beside its CPU EP).
 *
 * Only re-exports: the trainer itself reaches these modules directly. `standardOps` builds the graphs
 * from standard ONNX ops only (no com.microsoft FusedMatMul), which EPs without contrib kernels need.
 */
export { backwardGraph, forwardGraph, gradOutputName, NORMS, PROJECTIONS, projectionShape, savedShapes } from './backends/native/decoder-layer-graph.js';
export type { DecoderLayerSpec, LayerGraphOptions, LayerLoraSpec, Projection } from './backends/native/decoder-layer-graph.js';
export { OnnxGraph } from './backends/native/onnx-graph.js';
