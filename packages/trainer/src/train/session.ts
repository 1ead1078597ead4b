/**
 * One training run end to end: load the tokenizer, model and data, choose what trains (stage 1:
 * embed_tokens; stage 2 / SFT: LoRA + modules_to_save; full), then run the loop and write the result.
 *
 *   stage 1  → output dir: the full model (HF folder, resized vocabulary) + tokenizer, as run_clm_pt does
 *   LoRA     → output dir: the PEFT adapter (adapter_config.json + adapter_model.safetensors, with
 *              embed_tokens / lm_head as modules_to_save) + tokenizer
 *   full     → output dir: the full model + tokenizer
 *
 * Nothing is created before everything that can be checked is: the flags (options.ts), the input paths
 * (checkTrainInputs), the output-dir decision (planOutputDir), the model + tokenizer + adapter (loaded).
 * A failure while the data is tokenized removes an output dir this run created; a failure during
 * training keeps what the loop saved (its checkpoints never hold non-finite weights, see loop.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, readPeftAdapter, writePeftAdapter, writeSafetensors, type LoraConfig } from '@cllama/lora';
import { loadTokenizer, type Tokenizer } from '@cllama/tokenizer-merge';
import { activeBackend, initBackend, type BackendChoice, type BackendInfo } from '../backend.js';
import { checkModelMemory, trainingMemoryJob } from '../memory.js';
import { loadLlama, saveLlama } from '../model/io.js';
import { applySavedWeights, readAdapterTensors, assignChecked, loraTensorsOf, restoreAdapterTensors, untieForSavedEmbeddings } from '../model/adapter.js';
import type { LlamaModel } from '../model/llama.js';
import { DATA_CACHE_DIR, TRAINABLE_WEIGHTS_FILE, planOutputDir, prepareOutputDir } from './checkpoint.js';
import { listFiles, preparePretrainData, prepareSftData, type PreparedData } from './data.js';
import { DataParallel } from './data-parallel.js';
import { runTrainingLoop, type LoopModel, type LoopResult } from './loop.js';
import { trainablePlan, type TrainArgs } from './options.js';
import { CllamaError, copyFileAtomic, realTarget } from '@cllama/core';

export class TrainSessionError extends CllamaError {
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
  await checkModelMemory(args.modelNameOrPath, trainingMemoryJob(args), {
    backend: activeBackend()!.name,
    replicas: args.threads,
    vocabSize: tokenizer.vocabSize,
  });
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
    // PEFT on a tied model: modules_to_save embed_tokens / lm_head are trained as separate copies
    untieForSavedEmbeddings(model, lora.modulesToSave);
    const loraTensors = loaded ? loraTensorsOf(loaded.tensors) : undefined;
    model.attachLora({ r: lora.r, loraAlpha: lora.loraAlpha, loraDropout: lora.loraDropout, targetModules: lora.targetModules }, loraTensors, args.seed);
    if (loaded) applySavedWeights(model, loaded.tensors, lora.modulesToSave.map(moduleWeight), args.peftPath!);
    names = [...model.namedVariables((n) => n.includes('.lora_A.') || n.includes('.lora_B.')).keys()];
    for (const module of lora.modulesToSave) names.push(moduleWeight(module));
  }
  // only these get gradients: frozen weights (e.g. lm_head in stage 1) skip their weight gradients
  const chosen = new Set(names);
  model.setTrainable((name) => chosen.has(name));
  model.gradientCheckpointing = args.gradientCheckpointing;
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

/** The trainable weights as host copies (every backend; webgpu reads asynchronously only). */
async function trainableTensors(t: TrainedModel): Promise<Array<{ name: string; shape: number[]; data: Float32Array }>> {
  const out = [];
  for (const p of t.params) out.push({ name: p.name, shape: [...p.variable.shape], data: (await p.variable.data()) as Float32Array });
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
    ? (await fs.readdir(src))
        .filter((f) => /^(tokenizer\.model|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|added_tokens\.json)$/.test(f))
        .map((f) => path.join(src, f))
    : [src];
  for (const f of files) {
    const target = path.join(dest, path.basename(f) === path.basename(src) && !st.isDirectory() ? 'tokenizer.model' : path.basename(f));
    await copyFileAtomic(f, target);
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

/** Every input path the run reads exists and is of the right kind (before anything is created or loaded). */
export async function checkTrainInputs(args: TrainArgs): Promise<void> {
  const kind = async (p: string) =>
    fs.stat(p).then(
      (st) => (st.isDirectory() ? 'dir' : 'file'),
      () => 'missing' as const,
    );
  if ((await kind(path.join(args.modelNameOrPath, 'config.json'))) !== 'file') {
    throw new TrainSessionError(`--model-name-or-path ${args.modelNameOrPath}: no config.json there; give an HF LLaMA folder (config.json + safetensors)`);
  }
  if ((await kind(args.tokenizerNameOrPath)) === 'missing') {
    throw new TrainSessionError(`--tokenizer-name-or-path ${args.tokenizerNameOrPath} does not exist; give a .model file or an HF tokenizer folder`);
  }
  await listFiles(args.datasetDir, ...(args.mode === 'pretrain' ? ['.txt'] : ['.json', '.jsonl']));
  if (args.validationFile !== undefined && (await kind(args.validationFile)) !== 'file') {
    throw new TrainSessionError(`--validation-file ${args.validationFile} is not a file; give an Alpaca .json / .jsonl file`);
  }
  if (args.peftPath !== undefined && (await kind(path.join(args.peftPath, 'adapter_config.json'))) !== 'file') {
    throw new TrainSessionError(`--peft-path ${args.peftPath}: no adapter_config.json there; give a PEFT adapter folder`);
  }
  // the run writes config.json / model.safetensors / adapter / tokenizer files into --output-dir (and
  // --overwrite-output-dir deletes them there first): never into a folder it reads from
  const out = await realTarget(args.outputDir);
  const tokenizerDir = (await kind(args.tokenizerNameOrPath)) === 'dir' ? args.tokenizerNameOrPath : path.dirname(args.tokenizerNameOrPath);
  for (const [flag, input] of [
    ['--model-name-or-path', args.modelNameOrPath],
    ['--tokenizer-name-or-path', tokenizerDir],
    ['--dataset-dir', args.datasetDir],
    ['--peft-path', args.peftPath],
  ] as const) {
    if (input !== undefined && (await realTarget(input)) === out) {
      throw new TrainSessionError(`--output-dir ${args.outputDir} is the ${flag} folder; the run would write over its input: choose another --output-dir`);
    }
  }
}

export async function runTrainingSession(
  args: TrainArgs,
  opts: {
    backend?: BackendChoice;
    onStep?: Parameters<typeof runTrainingLoop>[5]['onStep'];
    /** Called once the model and data are ready, before the first step (the CLI prints the backend). */
    onStart?: (backend: BackendInfo | undefined) => void;
  } = {},
): Promise<SessionResult> {
  await checkTrainInputs(args);
  const outputOpts = { overwrite: args.overwriteOutputDir, resumeFromCheckpoint: args.resumeFromCheckpoint };
  await planOutputDir(args.outputDir, outputOpts); // refuses (writing nothing) before the model is loaded
  const t = await setUpModel(args, opts);
  let data: PreparedData | undefined;
  const cacheRoot = args.dataCacheDir ?? path.join(args.outputDir, DATA_CACHE_DIR);
  let parallel: DataParallel | undefined;
  const createdOutputDir = !(await fs.stat(args.outputDir).then(
    () => true,
    () => false,
  ));
  let training = false;
  try {
    const prepared = await prepareOutputDir(args.outputDir, outputOpts);
    if (args.threads > 1) {
      const backend = activeBackend()?.name;
      if (backend !== 'wasm' && backend !== 'cpu') {
        throw new TrainSessionError(
          `--threads ${args.threads} is for the single-threaded wasm and cpu backends; ${backend === 'webgpu' ? 'on webgpu one process drives the device' : `the ${backend} backend already uses every core`}: drop --threads`,
        );
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
            {
              datasetDir: args.datasetDir,
              cacheRoot,
              validationFile: args.validationFile,
              maxSeqLength: args.maxSeqLength,
              validationSplitPercentage: args.validationSplitPercentage,
              seed: args.seed,
            },
            t.tokenizer,
          );
    if (args.doEval && !data.eval) {
      throw new TrainSessionError('--do-eval needs evaluation data: give --validation-file (sft) or a --validation-split-percentage above 0');
    }
    const isLora = t.lora !== undefined;
    training = true;
    opts.onStart?.(activeBackend());
    const result = await runTrainingLoop(
      loopModel(t.model),
      t.params,
      data.train,
      data.eval,
      {
        writeWeights: async (dir) => {
          if (isLora) await writePeftAdapter(dir, t.lora!, await readAdapterTensors(t.params));
          else await writeSafetensors(path.join(dir, TRAINABLE_WEIGHTS_FILE), await trainableTensors(t));
        },
        restoreWeights: async (dir) => {
          if (isLora) {
            restoreAdapterTensors(t.params, (await readPeftAdapter(dir)).tensors, dir);
          } else {
            const st = await SafetensorsFile.open(path.join(dir, TRAINABLE_WEIGHTS_FILE));
            try {
              for (const p of t.params) assignChecked(p.variable, await st.read(p.name), st.info(p.name).shape, `${dir}: ${p.name}`);
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
            await writePeftAdapter(staging, t.lora!, await readAdapterTensors(t.params));
          } else {
            await saveLlama(staging, t.model, { force: true });
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
    return {
      ...result,
      outputDir: args.outputDir,
      resumedFrom: prepared.resumeFrom,
      numTrainExamples: data.train.length,
      numEvalExamples: data.eval?.length ?? 0,
      cacheHit: data.cacheHit,
    };
  } catch (err) {
    // nothing trained yet: an output dir this run created holds at most a data cache; leave nothing behind
    if (!training && createdOutputDir) {
      data?.close();
      data = undefined;
      await fs.rm(args.outputDir, { recursive: true, force: true });
    }
    throw err;
  } finally {
    await parallel?.close();
    data?.close();
    t.model.dispose();
  }
}
