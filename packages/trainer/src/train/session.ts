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
 *
 * How this version differs: the output dir is locked for the run (lock.ts) before the resume decision
 * is made again under the lock; the base model's fingerprint (fingerprint.ts) and the LoRA alpha go
 * into every checkpoint and are compared on resume (loop.ts); SFT data whose truncation leaves no
 * trained token is refused (data.ts) and a partial count warned about; every write names its output
 * when it fails (write-errors.ts), and the final result is staged in a hidden folder that is removed
 * if it cannot be completed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, readPeftAdapter, writePeftAdapter, writeSafetensors, type LoraConfig } from '@cllama/lora';
import { loadTokenizer, type Tokenizer } from '@cllama/tokenizer-merge';
import { initBackend, type BackendChoice, type BackendInfo } from '../backend.js';
import { dataParallelBackends } from '../backends/registry.js';
import { checkModelMemory, chooseModelCheckpointing, trainingMemoryJob } from '../memory.js';
import { loadLlama, saveLlama } from '../model/io.js';
import { applySavedWeights, untieForSavedEmbeddings } from '../model/adapter.js';
import { assignChecked, loraTensorsOf, readAdapterTensors, restoreAdapterTensors } from '../model/peft-keys.js';
import type { LlamaModel } from '../model/llama.js';
import { DATA_CACHE_DIR, TRAINABLE_WEIGHTS_FILE, planOutputDir, prepareOutputDir } from './checkpoint.js';
import { listFiles, prepareTrainData, reportUntrained, type PreparedData } from './data.js';
import { DataParallel } from './data-parallel.js';
import { baseModelFingerprint } from './fingerprint.js';
import { LOCK_FILE, OutputDirLock, OutputDirLockedError } from './lock.js';
import { FINAL_STAGING_PREFIX, writingOutput } from './write-errors.js';
import { runTrainingLoop, type LoopHooks, type LoopModel, type LoopResult } from './loop.js';
import { trainablePlan, type TrainArgs } from './options.js';
import { copyFileAtomic, realTarget } from '@cllama/core';
import { TrainerError } from '../errors.js';

export class TrainSessionError extends TrainerError {
  override name = 'TrainSessionError';
}

/** HF module name (`embed_tokens`, `lm_head`) → the weight it owns. */
const MODULE_WEIGHTS: Record<string, string> = {
  embed_tokens: 'model.embed_tokens.weight',
  lm_head: 'lm_head.weight',
};

export interface TrainedModel {
  /** The backend the run chose (initBackend), with its facts. */
  backend: BackendInfo;
  model: LlamaModel;
  tokenizer: Tokenizer;
  /** Trainable variables under their HF names (LoRA: `<module>.lora_A.weight`). */
  params: Array<{ name: string; variable: tf.Variable }>;
  lora: LoraConfig | undefined;
  /** The base model as loaded (before the vocabulary resize): its path and fingerprint.ts fingerprint. */
  baseModel: { fingerprint: string; path: string };
}

/** Loads model + tokenizer and selects the trainable variables for the run's mode/stage. */
export async function setUpModel(args: TrainArgs, opts: { backend?: BackendChoice; onNote?: (message: string) => void } = {}): Promise<TrainedModel> {
  // the run decides its backend here, once; the memory check and the model get its facts
  const backend = await initBackend(opts.backend ?? 'auto');
  const tokenizer = await loadTokenizer(args.tokenizerNameOrPath);
  // refuse a model that cannot fit before reading a single weight (never a heap abort mid-step); with
  // no --gradient-checkpointing flag, turn it on when only that makes the job fit, and say so
  const memoryOpts = { backend: backend.name, replicas: args.threads, vocabSize: tokenizer.vocabSize };
  let gradientCheckpointing = args.gradientCheckpointing;
  if (gradientCheckpointing === undefined) {
    const choice = await chooseModelCheckpointing(args.modelNameOrPath, trainingMemoryJob(args), memoryOpts);
    gradientCheckpointing = choice.gradientCheckpointing;
    if (choice.note) (opts.onNote ?? ((m: string) => process.stderr.write(`cllama-train: ${m}\n`)))(choice.note);
  } else {
    await checkModelMemory(args.modelNameOrPath, trainingMemoryJob(args), memoryOpts);
  }
  const model = await loadLlama(args.modelNameOrPath, { facts: backend.facts });
  const baseModel = { fingerprint: await baseModelFingerprint(model), path: path.resolve(args.modelNameOrPath) };
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
  model.gradientCheckpointing = gradientCheckpointing;
  const all = model.namedVariables();
  const params = names.map((name) => {
    const variable = all.get(name);
    if (!variable) throw new TrainSessionError(`no weight '${name}' in this model to train`);
    return { name, variable };
  });
  return { backend, model, tokenizer, params, lora, baseModel };
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

/** Creates `dir` (and its parents); true when this call created it, false when it was there. */
async function makeDir(dir: string): Promise<boolean> {
  await fs.mkdir(path.dirname(path.resolve(dir)), { recursive: true });
  return fs.mkdir(dir).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return false;
      throw err;
    },
  );
}

/** `--threads n` workers, on a backend whose facts say data parallelism applies (the single-threaded ones). */
async function startDataParallel(threads: number, t: TrainedModel): Promise<DataParallel> {
  const { facts, name } = t.backend;
  if (!facts.threads.dataParallel) {
    throw new TrainSessionError(
      `--threads ${threads} is for the single-threaded ${dataParallelBackends().join(' and ')} backends; ${facts.threads.why}: drop --threads`,
    );
  }
  return DataParallel.start({ threads, backend: name as BackendChoice, model: t.model, params: t.params, lora: t.lora });
}

/**
 * How the loop writes and restores the trained weights (a PEFT adapter, or the trainable tensors as
 * safetensors) and writes the final result: staged in a hidden folder, then moved into the output dir.
 */
function sessionHooks(args: TrainArgs, trainedModel: TrainedModel): LoopHooks {
  const isLora = trainedModel.lora !== undefined;
  return {
    writeWeights: async (dir) => {
      if (isLora) await writePeftAdapter(dir, trainedModel.lora!, await readAdapterTensors(trainedModel.params));
      else await writeSafetensors(path.join(dir, TRAINABLE_WEIGHTS_FILE), await trainableTensors(trainedModel));
    },
    restoreWeights: async (dir) => {
      if (isLora) {
        restoreAdapterTensors(trainedModel.params, (await readPeftAdapter(dir)).tensors, dir);
      } else {
        const st = await SafetensorsFile.open(path.join(dir, TRAINABLE_WEIGHTS_FILE));
        try {
          for (const p of trainedModel.params) assignChecked(p.variable, await st.read(p.name), st.info(p.name).shape, `${dir}: ${p.name}`);
        } finally {
          await st.close();
        }
      }
    },
    writeFinal: async (outputDir) => {
      const staging = path.join(outputDir, `${FINAL_STAGING_PREFIX}${process.pid}`);
      await fs.rm(staging, { recursive: true, force: true });
      try {
        if (isLora) {
          await fs.mkdir(staging);
          await writePeftAdapter(staging, trainedModel.lora!, await readAdapterTensors(trainedModel.params));
        } else {
          await saveLlama(staging, trainedModel.model, { force: true });
        }
        await copyTokenizer(args.tokenizerNameOrPath, staging);
      } catch (err) {
        // (a full disk) nothing half-staged left behind; the output dir has not been touched yet
        await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
        throw err;
      }
      await moveFilesInto(staging, outputDir);
    },
  };
}

export async function runTrainingSession(
  args: TrainArgs,
  opts: {
    backend?: BackendChoice;
    onStep?: Parameters<typeof runTrainingLoop>[5]['onStep'];
    /** Called once the model and data are ready, before the first step (the CLI prints the backend). */
    onStart?: (backend: BackendInfo | undefined) => void;
    /** A problem that does not stop the run (default: one `cllama-train: warning: …` line on stderr). */
    onWarning?: (message: string) => void;
    /** A decision the run made for the user, e.g. gradient checkpointing turned on (default: one `cllama-train: …` line on stderr). */
    onNote?: (message: string) => void;
  } = {},
): Promise<SessionResult> {
  await checkTrainInputs(args);
  const outputOpts = { overwrite: args.overwriteOutputDir, resumeFromCheckpoint: args.resumeFromCheckpoint };
  await planOutputDir(args.outputDir, outputOpts); // refuses (writing nothing) before anything is created
  // one run per output dir (lock.ts): the folder is created to hold the lock, and removed again if this
  // run created it and stops before training
  const nothingYet = 'nothing was trained yet: free space and run again';
  const createdOutputDir = await writingOutput(args.outputDir, nothingYet, () => makeDir(args.outputDir));
  let lock: OutputDirLock | undefined;
  let t: TrainedModel | undefined;
  let data: PreparedData | undefined;
  const cacheRoot = args.dataCacheDir ?? path.join(args.outputDir, DATA_CACHE_DIR);
  let parallel: DataParallel | undefined;
  let training = false;
  try {
    lock = await writingOutput(path.join(args.outputDir, LOCK_FILE), nothingYet, () => OutputDirLock.acquire(args.outputDir));
    t = await setUpModel(args, opts);
    // decided again under the lock: what a run that held it before left is what this one resumes from
    const prepared = await writingOutput(args.outputDir, nothingYet, () => prepareOutputDir(args.outputDir, outputOpts));
    const trainedModel: TrainedModel = t;
    if (args.threads > 1) parallel = await startDataParallel(args.threads, t);
    // the tokenized cache (in the output dir unless --data-cache-dir puts it elsewhere)
    const cacheFull = `${nothingYet}${args.dataCacheDir ? '' : ', or put the cache on another disk with --data-cache-dir'}`;
    data = await writingOutput(cacheRoot, cacheFull, () => prepareTrainData(args, trainedModel.tokenizer, cacheRoot));
    reportUntrained(data, args, opts.onWarning ?? ((m: string) => process.stderr.write(`cllama-train: ${m}\n`)));
    training = true;
    opts.onStart?.(t.backend);
    const result = await runTrainingLoop(loopModel(t.model), t.params, data.train, data.eval, sessionHooks(args, t), {
      ...args,
      outputDir: args.outputDir,
      resumeFrom: prepared.resumeFrom,
      identity: { ...(t.lora ? { loraAlpha: t.lora.loraAlpha } : {}), baseModel: t.baseModel },
      progress: !args.noProgress,
      title: `cllama-train ${args.mode}${args.mode === 'pretrain' ? ` stage ${args.stage}` : ''}`,
      onStep: opts.onStep,
      dataParallel: parallel,
    });
    return {
      ...result,
      outputDir: args.outputDir,
      resumedFrom: prepared.resumeFrom,
      numTrainExamples: data.train.length,
      numEvalExamples: data.eval?.length ?? 0,
      cacheHit: data.cacheHit,
    };
  } catch (err) {
    // nothing trained yet: an output dir this run created holds at most a data cache and its lock; leave
    // nothing behind (a folder another run locked is not this run's to remove)
    if (!training && createdOutputDir && !(err instanceof OutputDirLockedError)) {
      data?.close();
      data = undefined;
      lock?.releaseSync();
      await fs.rm(args.outputDir, { recursive: true, force: true });
    }
    throw err;
  } finally {
    await parallel?.close();
    data?.close();
    t?.model.dispose();
    lock?.releaseSync();
  }
}
