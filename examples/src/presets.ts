/**
 * Sizes and hyper-parameters of each recipe preset.
 *
 * `cpu` is the README's `npm run recipe`: a tiny LLaMA on the CPU (`auto`: the native backend where
 * onnxruntime-node loads, else wasm), sized to finish on a 2-core machine in well under 20 minutes. `fast` is the same chain at the smallest sizes that
 * still exercise every phase (the CI test). `gpu` is the recipe at real sequence length with the
 * seed's hyper-parameters scaled to one GPU (--backend webgpu, or tfjs-node-gpu); it expects `--base <HF LLaMA folder>`.
 */

export interface TrainPhase {
  maxSteps: number;
  batchSize: number;
  gradientAccumulationSteps: number;
  learningRate: number;
  warmupRatio: number;
  weightDecay: number;
  evalSteps: number;
  saveSteps: number;
}

export interface Preset {
  name: 'fast' | 'cpu' | 'gpu';
  /** Tiny base model trained from scratch when no --base is given. */
  base: {
    hiddenSize: number;
    intermediateSize: number;
    numHiddenLayers: number;
    numAttentionHeads: number;
    numKeyValueHeads: number;
    train: TrainPhase;
  };
  /** Chinese SentencePiece model trained for the vocabulary expansion. */
  vocab: { vocabSize: number; modelType: 'unigram' | 'bpe'; characterCoverage: number; trainLines: number };
  blockSize: number;
  maxSeqLength: number;
  /** Lines of held-out Chinese text scored for perplexity after each phase. */
  heldoutLines: number;
  /** Cap on the examples each training phase evaluates on. */
  maxEvalSamples: number;
  stage1: TrainPhase;
  stage2: TrainPhase & { loraRank: number; loraAlpha: number; loraDropout: number; targets: string[] };
  sft: TrainPhase & { loraRank: number; loraAlpha: number; loraDropout: number; targets: string[]; alpacaZh: number; pclue: number; evalExamples: number };
  generation: { maxNewTokens: number };
}

const ATTENTION = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
const ALL_SEVEN = [...ATTENTION, 'gate_proj', 'down_proj', 'up_proj'];

export const PRESETS: Record<Preset['name'], Preset> = {
  fast: {
    name: 'fast',
    base: {
      hiddenSize: 32,
      intermediateSize: 86,
      numHiddenLayers: 1,
      numAttentionHeads: 2,
      numKeyValueHeads: 2,
      train: { maxSteps: 12, batchSize: 4, gradientAccumulationSteps: 1, learningRate: 3e-3, warmupRatio: 0.05, weightDecay: 0, evalSteps: 6, saveSteps: 6 },
    },
    vocab: { vocabSize: 3000, modelType: 'unigram', characterCoverage: 0.995, trainLines: 2000 },
    blockSize: 64,
    maxSeqLength: 96,
    heldoutLines: 40,
    maxEvalSamples: 16,
    stage1: { maxSteps: 8, batchSize: 4, gradientAccumulationSteps: 1, learningRate: 5e-3, warmupRatio: 0.05, weightDecay: 0.01, evalSteps: 4, saveSteps: 4 },
    stage2: {
      maxSteps: 8,
      batchSize: 4,
      gradientAccumulationSteps: 1,
      learningRate: 2e-3,
      warmupRatio: 0.05,
      weightDecay: 0.01,
      evalSteps: 4,
      saveSteps: 4,
      loraRank: 4,
      loraAlpha: 16,
      loraDropout: 0.05,
      targets: ATTENTION,
    },
    sft: {
      maxSteps: 8,
      batchSize: 4,
      gradientAccumulationSteps: 1,
      learningRate: 2e-3,
      warmupRatio: 0.03,
      weightDecay: 0,
      evalSteps: 4,
      saveSteps: 4,
      loraRank: 4,
      loraAlpha: 16,
      loraDropout: 0.05,
      targets: ALL_SEVEN,
      alpacaZh: 120,
      pclue: 80,
      evalExamples: 16,
    },
    generation: { maxNewTokens: 12 },
  },
  cpu: {
    name: 'cpu',
    base: {
      hiddenSize: 128,
      intermediateSize: 344,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 4,
      train: {
        maxSteps: 120,
        batchSize: 8,
        gradientAccumulationSteps: 1,
        learningRate: 3e-3,
        warmupRatio: 0.05,
        weightDecay: 0.01,
        evalSteps: 40,
        saveSteps: 40,
      },
    },
    vocab: { vocabSize: 8000, modelType: 'unigram', characterCoverage: 0.9995, trainLines: 12000 },
    blockSize: 128,
    maxSeqLength: 192,
    heldoutLines: 200,
    maxEvalSamples: 32,
    stage1: {
      maxSteps: 100,
      batchSize: 8,
      gradientAccumulationSteps: 1,
      learningRate: 5e-3,
      warmupRatio: 0.05,
      weightDecay: 0.01,
      evalSteps: 25,
      saveSteps: 50,
    },
    stage2: {
      maxSteps: 100,
      batchSize: 8,
      gradientAccumulationSteps: 1,
      learningRate: 2e-3,
      warmupRatio: 0.05,
      weightDecay: 0.01,
      evalSteps: 25,
      saveSteps: 50,
      loraRank: 8,
      loraAlpha: 32,
      loraDropout: 0.05,
      targets: ATTENTION,
    },
    sft: {
      maxSteps: 100,
      batchSize: 8,
      gradientAccumulationSteps: 1,
      learningRate: 2e-3,
      warmupRatio: 0.03,
      weightDecay: 0,
      evalSteps: 25,
      saveSteps: 50,
      loraRank: 8,
      loraAlpha: 32,
      loraDropout: 0.05,
      targets: ALL_SEVEN,
      alpacaZh: 900,
      pclue: 600,
      evalExamples: 64,
    },
    generation: { maxNewTokens: 40 },
  },
  gpu: {
    name: 'gpu',
    // Only used without --base (a from-scratch base is not what the GPU preset is for, but it works).
    base: {
      hiddenSize: 512,
      intermediateSize: 1376,
      numHiddenLayers: 8,
      numAttentionHeads: 8,
      numKeyValueHeads: 8,
      train: {
        maxSteps: 2000,
        batchSize: 16,
        gradientAccumulationSteps: 1,
        learningRate: 1e-3,
        warmupRatio: 0.05,
        weightDecay: 0.01,
        evalSteps: 200,
        saveSteps: 200,
      },
    },
    vocab: { vocabSize: 20000, modelType: 'unigram', characterCoverage: 0.9995, trainLines: 12000 },
    // The seed's hyper-parameters (lr 2e-4 / 1e-4 / 1e-4, seq 512, warmup 0.05 / 0.03, weight decay
    // 0.01 / 0, cosine), batch scaled from 1024/512 sequences on 8-16 A100s to one GPU with accumulation.
    blockSize: 512,
    maxSeqLength: 512,
    heldoutLines: 1000,
    maxEvalSamples: 400,
    stage1: {
      maxSteps: 3000,
      batchSize: 4,
      gradientAccumulationSteps: 8,
      learningRate: 2e-4,
      warmupRatio: 0.05,
      weightDecay: 0.01,
      evalSteps: 200,
      saveSteps: 200,
    },
    stage2: {
      maxSteps: 6000,
      batchSize: 4,
      gradientAccumulationSteps: 8,
      learningRate: 1e-4,
      warmupRatio: 0.05,
      weightDecay: 0.01,
      evalSteps: 200,
      saveSteps: 200,
      loraRank: 8,
      loraAlpha: 32,
      loraDropout: 0.05,
      targets: ATTENTION,
    },
    sft: {
      maxSteps: 6000,
      batchSize: 4,
      gradientAccumulationSteps: 8,
      learningRate: 1e-4,
      warmupRatio: 0.03,
      weightDecay: 0,
      evalSteps: 200,
      saveSteps: 200,
      loraRank: 8,
      loraAlpha: 32,
      loraDropout: 0.05,
      targets: ALL_SEVEN,
      alpacaZh: 1000,
      pclue: 705,
      evalExamples: 200,
    },
    generation: { maxNewTokens: 128 },
  },
};

/** Fixed Chinese instructions answered before and after instruction tuning. */
export const SAMPLE_INSTRUCTIONS = ['请介绍一下中国的首都北京。', '写一句关于春天的诗。', '如何保持身体健康？'];

/**
 * The cllama-train flags of one training phase (no backend or progress flags): what the recipe passes,
 * and what bench/launch-check passes to --emit-launch so both engines train with the same settings.
 */
export function phaseTrainFlags(t: TrainPhase, maxEvalSamples: number): string[] {
  return [
    '--max-steps',
    String(t.maxSteps),
    '--per-device-train-batch-size',
    String(t.batchSize),
    '--per-device-eval-batch-size',
    String(t.batchSize),
    '--gradient-accumulation-steps',
    String(t.gradientAccumulationSteps),
    '--learning-rate',
    String(t.learningRate),
    '--lr-scheduler-type',
    'cosine',
    '--warmup-ratio',
    String(t.warmupRatio),
    '--weight-decay',
    String(t.weightDecay),
    '--logging-steps',
    String(Math.max(1, Math.floor(t.evalSteps / 2))),
    '--logging-first-step',
    '--eval-steps',
    String(t.evalSteps),
    '--save-steps',
    String(t.saveSteps),
    '--save-total-limit',
    '2',
    '--do-eval',
    '--max-eval-samples',
    String(maxEvalSamples),
    '--seed',
    '42',
  ];
}
