/**
 * One training run end to end: load the tokenizer, model and data, choose what trains (stage 1:
 * embed_tokens; stage 2 / SFT: LoRA + modules_to_save; full), then run the loop and write the result.
 *
 *   stage 1  → output dir: the full model (HF folder, resized vocabulary) + tokenizer, as run_clm_pt does
 *   LoRA     → output dir: the PEFT adapter (adapter_config.json + adapter_model.safetensors, with
 *              embed_tokens / lm_head as modules_to_save) + tokenizer
 *   full     → output dir: the full model + tokenizer
 */
import * as tf from '@tensorflow/tfjs-core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, readPeftAdapter, writePeftAdapter, writeSafetensors, type LoraConfig } from '@cllama/lora';
import { loadTokenizer, type Tokenizer } from '@cllama/tokenizer-merge';
import { activeBackend, initBackend, type BackendChoice } from '../backend.js';
import { checkModelMemory, trainingMemoryJob } from '../memory.js';
import { loadLlama, saveLlama } from '../model/io.js';
import type { LlamaModel } from '../model/llama.js';
import { DATA_CACHE_DIR, TRAINABLE_WEIGHTS_FILE, prepareOutputDir } from './checkpoint.js';
import { preparePretrainData, prepareSftData, type PreparedData } from './data.js';
import { DataParallel } from './data-parallel.js';
import { runTrainingLoop, type LoopModel, type LoopResult } from './loop.js';
import { trainablePlan, type TrainArgs } from './options.js';

export const PEFT_PREFIX = 'base_model.model.';

export class TrainSessionError extends Error {
  override name = 'TrainSessionError';
}

/** HF module name (`embed_tokens`, `lm_head`) → the weight it owns. */
const MODULE_WEIGHTS: Record<string, string> = {
  embed_tokens: 'model.embed_tokens.weight',
  lm_head: 'lm_head.weight',
};

export interface TrainedModel {
  model: LlamaModel;
  tokenizer: Tokenizer;
  /** Trainable variables under their HF names (LoRA: `<module>.lora_A.weight`). */
  params: Array<{ name: string; variable: tf.Variable }>;
  lora: LoraConfig | undefined;
}

/** Loads model + tokenizer and selects the trainable variables for the run's mode/stage. */
export async function setUpModel(args: TrainArgs, opts: { backend?: BackendChoice } = {}): Promise<TrainedModel> {
  await initBackend(opts.backend ?? 'auto');
  const tokenizer = await loadTokenizer(args.tokenizerNameOrPath);
  // refuse a model that cannot fit before reading a single weight (never a wasm abort mid-step)
  await checkModelMemory(args.modelNameOrPath, trainingMemoryJob(args), { backend: activeBackend()!.name, replicas: args.threads, vocabSize: tokenizer.vocabSize });
  const model = await loadLlama(args.modelNameOrPath);
  // HF: model.resize_token_embeddings(len(tokenizer)) before anything else
  if (model.config.vocabSize !== tokenizer.vocabSize) model.resizeTokenEmbeddings(tokenizer.vocabSize, args.seed);
  const plan = trainablePlan(args);
  let lora: LoraConfig | undefined;
  let names: string[];
  if (plan.kind === 'embeddings') {
    names = [MODULE_WEIGHTS.embed_tokens!];
  } else if (plan.kind === 'full') {
    names = [...model.namedVariables().keys()];
  } else {
    let loaded: Awaited<ReturnType<typeof readPeftAdapter>> | undefined;
    if (args.peftPath) {
      // run_clm_sft_with_peft: PeftModel.from_pretrained(model, peft_path) — the adapter's own config wins
      loaded = await readPeftAdapter(args.peftPath);
      lora = { ...loaded.config, inferenceMode: false };
    } else {
      lora = {
        r: args.loraRank,
        loraAlpha: args.loraAlpha,
        loraDropout: args.loraDropout,
        targetModules: args.trainable,
        modulesToSave: args.modulesToSave,
        bias: 'none',
        fanInFanOut: false,
        baseModelNameOrPath: args.modelNameOrPath,
        inferenceMode: false,
      };
    }
    const loraTensors = loaded ? new Map([...loaded.tensors].filter(([k]) => k.includes('.lora_'))) : undefined;
    model.attachLora({ r: lora.r, loraAlpha: lora.loraAlpha, loraDropout: lora.loraDropout, targetModules: lora.targetModules }, loraTensors, args.seed);
    if (loaded) {
      for (const module of lora.modulesToSave) {
        const weight = moduleWeight(module);
        const saved = loaded.tensors.get(PEFT_PREFIX + weight);
        if (saved) assignVariable(model.namedVariables((n) => n === weight).get(weight)!, saved.data, saved.shape, `${args.peftPath}: ${PEFT_PREFIX + weight}`);
      }
    }
    names = [...model.namedVariables((n) => n.includes('.lora_A.') || n.includes('.lora_B.')).keys()];
    for (const module of lora.modulesToSave) names.push(moduleWeight(module));
  }
  // only these get gradients: frozen weights (e.g. lm_head in stage 1) skip their weight gradients
  const chosen = new Set(names);
  model.setTrainable((name) => chosen.has(name));
  const all = model.namedVariables();
  const params = names.map((name) => {
    const variable = all.get(name);
    if (!variable) throw new TrainSessionError(`no weight '${name}' in this model to train`);
    return { name, variable };
  });
  return { model, tokenizer, params, lora };
}

function moduleWeight(module: string): string {
  const w = MODULE_WEIGHTS[module];
  if (!w) throw new TrainSessionError(`--modules-to-save '${module}' is not supported; use embed_tokens and/or lm_head`);
  return w;
}

function assignVariable(v: tf.Variable, data: Float32Array, shape: readonly number[], what: string): void {
  if (shape.length !== v.shape.length || shape.some((d, i) => d !== v.shape[i])) {
    throw new TrainSessionError(`${what} has shape [${shape}], the model expects [${v.shape}] (was it trained with another tokenizer / rank?)`);
  }
  tf.tidy(() => v.assign(tf.tensor(data, [...shape], 'float32')));
}

/** The adapter tensors under PEFT key names: LoRA A/B and the modules_to_save weights. */
function adapterTensors(t: TrainedModel): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const p of t.params) out.set(PEFT_PREFIX + p.name, { shape: [...p.variable.shape], data: Float32Array.from(p.variable.dataSync() as Float32Array) });
  return out;
}

/** Loop adapter: the LLaMA loss and a resumable dropout stream. */
export function loopModel(model: LlamaModel): LoopModel {
  return {
    loss: (ids, labels) => model.loss(ids, labels),
    setTraining: (training) => {
      model.train(training);
    },
    // LoRA dropout masks come from a seed stream in the model; reseeding it before every micro-batch from
    // the loop's checkpointed RNG makes a resumed run draw the same masks
    reseedDropout: (seed) => model.reseedDropout(seed),
  };
}

async function copyTokenizer(src: string, dest: string): Promise<void> {
  const st = await fs.stat(src);
  const files = st.isDirectory()
    ? (await fs.readdir(src)).filter((f) => /^(tokenizer\.model|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|added_tokens\.json)$/.test(f)).map((f) => path.join(src, f))
    : [src];
  for (const f of files) {
    const target = path.join(dest, path.basename(f) === path.basename(src) && !st.isDirectory() ? 'tokenizer.model' : path.basename(f));
    const tmp = `${target}.tmp-${process.pid}`;
    await fs.copyFile(f, tmp);
    const h = await fs.open(tmp, 'r+');
    await h.sync();
    await h.close();
    await fs.rename(tmp, target);
  }
}

/** Moves every file of `from` into `to` (each rename atomic), then removes `from`. */
async function moveFilesInto(from: string, to: string): Promise<void> {
  for (const f of await fs.readdir(from)) await fs.rename(path.join(from, f), path.join(to, f));
  await fs.rm(from, { recursive: true, force: true });
}

export interface SessionResult extends LoopResult {
  outputDir: string;
  resumedFrom: string | undefined;
  numTrainExamples: number;
  numEvalExamples: number;
  cacheHit: boolean | undefined;
}

export async function runTrainingSession(
  args: TrainArgs,
  opts: { backend?: BackendChoice; onStep?: Parameters<typeof runTrainingLoop>[5]['onStep'] } = {},
): Promise<SessionResult> {
  const prepared = await prepareOutputDir(args.outputDir, { overwrite: args.overwriteOutputDir, resumeFromCheckpoint: args.resumeFromCheckpoint });
  const t = await setUpModel(args, opts);
  let data: PreparedData | undefined;
  const cacheRoot = args.dataCacheDir ?? path.join(args.outputDir, DATA_CACHE_DIR);
  let parallel: DataParallel | undefined;
  try {
    if (args.threads > 1) {
      const backend = activeBackend()?.name;
      if (backend !== 'wasm' && backend !== 'cpu') {
        throw new TrainSessionError(`--threads ${args.threads} is for the single-threaded wasm and cpu backends; the ${backend} backend already uses every core: drop --threads`);
      }
      parallel = await DataParallel.start({ threads: args.threads, backend, model: t.model, params: t.params, lora: t.lora });
    }
    data =
      args.mode === 'pretrain'
        ? await preparePretrainData(
            { datasetDir: args.datasetDir, cacheRoot, blockSize: args.blockSize, validationSplitPercentage: args.validationSplitPercentage, seed: args.seed },
            t.tokenizer,
          )
        : await prepareSftData(
            { datasetDir: args.datasetDir, cacheRoot, validationFile: args.validationFile, maxSeqLength: args.maxSeqLength, validationSplitPercentage: args.validationSplitPercentage, seed: args.seed },
            t.tokenizer,
          );
    if (args.doEval && !data.eval) {
      throw new TrainSessionError('--do-eval needs evaluation data: give --validation-file (sft) or a --validation-split-percentage above 0');
    }
    const isLora = t.lora !== undefined;
    const result = await runTrainingLoop(
      loopModel(t.model),
      t.params,
      data.train,
      data.eval,
      {
        writeWeights: async (dir) => {
          if (isLora) await writePeftAdapter(dir, t.lora!, adapterTensors(t));
          else await writeSafetensors(path.join(dir, TRAINABLE_WEIGHTS_FILE), t.params.map((p) => ({ name: p.name, shape: [...p.variable.shape], data: p.variable.dataSync() as Float32Array })));
        },
        restoreWeights: async (dir) => {
          if (isLora) {
            const saved = await readPeftAdapter(dir);
            for (const p of t.params) {
              const s = saved.tensors.get(PEFT_PREFIX + p.name);
              if (!s) throw new TrainSessionError(`${dir}: the adapter has no ${PEFT_PREFIX + p.name}`);
              assignVariable(p.variable, s.data, s.shape, `${dir}: ${PEFT_PREFIX + p.name}`);
            }
          } else {
            const st = await SafetensorsFile.open(path.join(dir, TRAINABLE_WEIGHTS_FILE));
            try {
              for (const p of t.params) assignVariable(p.variable, await st.read(p.name), st.info(p.name).shape, `${dir}: ${p.name}`);
            } finally {
              await st.close();
            }
          }
        },
        writeFinal: async (outputDir) => {
          const staging = path.join(outputDir, `.final.tmp-${process.pid}`);
          await fs.rm(staging, { recursive: true, force: true });
          if (isLora) {
            await fs.mkdir(staging);
            await writePeftAdapter(staging, t.lora!, adapterTensors(t));
          } else {
            await saveLlama(staging, t.model, { overwrite: true });
          }
          await copyTokenizer(args.tokenizerNameOrPath, staging);
          await moveFilesInto(staging, outputDir);
        },
      },
      {
        ...args,
        outputDir: args.outputDir,
        resumeFrom: prepared.resumeFrom,
        progress: !args.noProgress,
        title: `cllama-train ${args.mode}${args.mode === 'pretrain' ? ` stage ${args.stage}` : ''}`,
        onStep: opts.onStep,
        dataParallel: parallel,
      },
    );
    return { ...result, outputDir: args.outputDir, resumedFrom: prepared.resumeFrom, numTrainExamples: data.train.length, numEvalExamples: data.eval?.length ?? 0, cacheHit: data.cacheHit };
  } finally {
    await parallel?.close();
    data?.close();
    t.model.dispose();
  }
}
