/**
 * The PEFT LoRA adapter folder: `adapter_config.json` + `adapter_model.safetensors` — read, write,
 * validation, and the mapping between PEFT's tensor keys and the model's weight names.
 *
 * PEFT key names (as `get_peft_model_state_dict` saves them, adapter name removed):
 *   base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight   [r, in]
 *   base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight   [out, r]
 *   base_model.model.model.embed_tokens.weight                        (modules_to_save, full tensor)
 *   base_model.model.lm_head.weight                                   (modules_to_save, full tensor)
 * i.e. `base_model.model.` + the HF weight name, with `.lora_A`/`.lora_B` before `.weight` for LoRA pairs.
 */
import { refuseSpecialFile, writeFileAtomic, writeFolderAtomic } from '@cllama/core';
import { LoraError } from './errors.js';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pickleOnlyError } from './hf-checkpoint.js';
import { matchesTargetModule, moduleNameOf } from './lora-target.js';
import { type NamedTensor, SafetensorsFile, writeSafetensors } from './safetensors.js';

export class PeftError extends LoraError {
  constructor(
    message: string,
    readonly where?: string,
  ) {
    super(where ? `${where}: ${message}` : message);
    this.name = 'PeftError';
  }
}

export const ADAPTER_CONFIG_NAME = 'adapter_config.json';
export const ADAPTER_WEIGHTS_NAME = 'adapter_model.safetensors';
export const PEFT_KEY_PREFIX = 'base_model.model.';

export interface LoraConfig {
  r: number;
  loraAlpha: number;
  /** Dropout on the LoRA branch's input during training only. */
  loraDropout: number;
  /** Module-name suffixes (PEFT list form), e.g. ['q_proj', 'v_proj']; see targetModulesRegex for the string form. */
  targetModules: string[];
  /** PEFT's string form of target_modules: a regex that must match the whole module name. Overrides targetModules. */
  targetModulesRegex?: string;
  /** Modules trained in full and saved whole (e.g. ['embed_tokens', 'lm_head']). */
  modulesToSave: string[];
  bias: 'none';
  fanInFanOut: false;
  /** rsLoRA: scaling alpha/sqrt(r) instead of alpha/r. */
  useRslora?: boolean;
  baseModelNameOrPath?: string;
  inferenceMode?: boolean;
  /** Keys of adapter_config.json not lifted above, kept as read and written back. */
  extra?: Record<string, unknown>;
}

/** The LoRA branch's scale: alpha / r (or alpha / sqrt(r) with rsLoRA). */
export function loraScaling(config: Pick<LoraConfig, 'r' | 'loraAlpha' | 'useRslora'>): number {
  return config.useRslora ? config.loraAlpha / Math.sqrt(config.r) : config.loraAlpha / config.r;
}

/** What target_modules means for matching: the regex string when given, else the list. */
export function loraTargets(config: Pick<LoraConfig, 'targetModules' | 'targetModulesRegex'>): string[] | string {
  return config.targetModulesRegex ?? config.targetModules;
}

const LIFTED_KEYS = new Set([
  'peft_type',
  'task_type',
  'r',
  'lora_alpha',
  'lora_dropout',
  'target_modules',
  'modules_to_save',
  'bias',
  'fan_in_fan_out',
  'use_rslora',
  'base_model_name_or_path',
  'inference_mode',
]);

/** Validate a parsed adapter_config.json. */
export function parseLoraConfig(json: unknown, where?: string): LoraConfig {
  const fail = (msg: string): never => {
    throw new PeftError(msg, where);
  };
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('adapter config is not a JSON object');
  const raw = json as Record<string, unknown>;
  if (raw.peft_type !== 'LORA') fail(`peft_type is ${JSON.stringify(raw.peft_type)}; only LoRA adapters ("LORA") are supported`);
  if (raw.task_type !== undefined && raw.task_type !== null && raw.task_type !== 'CAUSAL_LM') {
    fail(`task_type is ${JSON.stringify(raw.task_type)}; only causal language-model adapters ("CAUSAL_LM") are supported`);
  }
  const r = raw.r;
  if (!Number.isSafeInteger(r) || (r as number) <= 0) fail(`r must be a positive integer, got ${JSON.stringify(r)}`);
  const alpha = raw.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) fail(`lora_alpha must be a number, got ${JSON.stringify(alpha)}`);
  const dropout = raw.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || dropout < 0 || dropout >= 1) fail(`lora_dropout must be in [0, 1), got ${JSON.stringify(dropout)}`);

  let targetModules: string[] = [];
  let targetModulesRegex: string | undefined;
  const tm = raw.target_modules;
  if (typeof tm === 'string') {
    targetModulesRegex = tm;
    try {
      new RegExp(`^(?:${tm})$`); // PEFT full-matches the string as a regex: refuse one that is not
    } catch (err) {
      fail(`target_modules ${JSON.stringify(tm)} is not a valid regular expression (${(err as Error).message})`);
    }
  } else if (Array.isArray(tm) && tm.every((t) => typeof t === 'string')) targetModules = [...(tm as string[])];
  else if (tm !== null && tm !== undefined) fail(`target_modules must be a list of module names or a regex string, got ${JSON.stringify(tm)}`);
  else fail('target_modules is missing; the adapter does not say which modules it adapts');

  const mts = raw.modules_to_save ?? [];
  if (!Array.isArray(mts) || !mts.every((m) => typeof m === 'string'))
    fail(`modules_to_save must be a list of module names or null, got ${JSON.stringify(mts)}`);
  const bias = raw.bias ?? 'none';
  if (bias !== 'none') fail(`bias is ${JSON.stringify(bias)}; only "none" is supported (LLaMA linears have no bias)`);
  if (raw.fan_in_fan_out === true)
    fail('fan_in_fan_out is true; that is for GPT-2 style Conv1D weights, not LLaMA — the adapter was made for another architecture');
  if (raw.use_dora === true) fail('use_dora is true; DoRA adapters are not supported, only plain LoRA');
  for (const key of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = raw[key];
    if (v && typeof v === 'object' && Object.keys(v).length > 0) fail(`${key} is set; per-module ranks/alphas are not supported`);
  }
  if (raw.layers_to_transform !== undefined && raw.layers_to_transform !== null) {
    fail('layers_to_transform is set; restricting LoRA to some layers is not supported — list the modules instead');
  }
  if (raw.use_rslora !== undefined && typeof raw.use_rslora !== 'boolean') fail('use_rslora must be true or false');
  if (raw.base_model_name_or_path !== undefined && raw.base_model_name_or_path !== null && typeof raw.base_model_name_or_path !== 'string') {
    fail('base_model_name_or_path must be a string');
  }

  const config: LoraConfig = {
    r: r as number,
    loraAlpha: alpha as number,
    loraDropout: dropout as number,
    targetModules,
    modulesToSave: [...(mts as string[])],
    bias: 'none',
    fanInFanOut: false,
    extra: Object.fromEntries(Object.entries(raw).filter(([k]) => !LIFTED_KEYS.has(k))),
  };
  if (targetModulesRegex !== undefined) config.targetModulesRegex = targetModulesRegex;
  if (raw.use_rslora === true) config.useRslora = true;
  if (typeof raw.base_model_name_or_path === 'string') config.baseModelNameOrPath = raw.base_model_name_or_path;
  if (typeof raw.inference_mode === 'boolean') config.inferenceMode = raw.inference_mode;
  return config;
}

/** The adapter_config.json object PEFT would write (sorted keys; unknown keys kept). */
export function loraConfigToJson(config: LoraConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...(config.extra ?? {}),
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: config.r,
    lora_alpha: config.loraAlpha,
    lora_dropout: config.loraDropout,
    target_modules: config.targetModulesRegex ?? config.targetModules,
    modules_to_save: config.modulesToSave.length > 0 ? config.modulesToSave : null,
    bias: 'none',
    fan_in_fan_out: false,
    base_model_name_or_path: config.baseModelNameOrPath ?? null,
    inference_mode: config.inferenceMode ?? true,
  };
  if (config.useRslora !== undefined) out.use_rslora = config.useRslora;
  return Object.fromEntries(
    Object.keys(out)
      .sort()
      .map((k) => [k, out[k]]),
  );
}

/** What a PEFT key refers to in the model. */
export type PeftKeyRole = { kind: 'lora_A' | 'lora_B'; weightName: string } | { kind: 'full'; weightName: string };

/**
 * Map a PEFT adapter key to the model weight it belongs to:
 * `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` → lora_A of `model.layers.0.self_attn.q_proj.weight`;
 * `base_model.model.lm_head.weight` → full `lm_head.weight`. Keys saved with the adapter name still in
 * them (`.lora_A.default.weight`, `.modules_to_save.default.weight`) are understood too.
 */
export function parsePeftKey(key: string): PeftKeyRole {
  if (!key.startsWith(PEFT_KEY_PREFIX)) {
    throw new PeftError(`tensor key '${key}' does not start with '${PEFT_KEY_PREFIX}'; this is not a PEFT adapter for a causal LM`);
  }
  const rest = key.slice(PEFT_KEY_PREFIX.length);
  const lora = /^(.*)\.(lora_A|lora_B)(?:\.[A-Za-z0-9_-]+)?\.weight$/.exec(rest);
  if (lora) return { kind: lora[2] as 'lora_A' | 'lora_B', weightName: `${lora[1]}.weight` };
  if (/\.lora_(embedding_)?[AB]|\.lora_magnitude_vector/.test(rest)) {
    throw new PeftError(`tensor key '${key}' is a LoRA tensor of a kind not supported here (only lora_A/lora_B of linear layers)`);
  }
  const saved = /^(.*)\.modules_to_save\.[A-Za-z0-9_-]+\.(weight|bias)$/.exec(rest);
  if (saved) return { kind: 'full', weightName: `${saved[1]}.${saved[2]}` };
  return { kind: 'full', weightName: rest };
}

/** PEFT keys of the LoRA pair for a model weight. */
export function peftLoraKeys(weightName: string): { a: string; b: string } {
  const moduleName = weightName.replace(/\.weight$/, '');
  return { a: `${PEFT_KEY_PREFIX}${moduleName}.lora_A.weight`, b: `${PEFT_KEY_PREFIX}${moduleName}.lora_B.weight` };
}

/** PEFT key of a modules_to_save weight. */
export function peftFullKey(weightName: string): string {
  return `${PEFT_KEY_PREFIX}${weightName}`;
}

async function readAdapterConfig(dir: string): Promise<LoraConfig> {
  const file = path.join(dir, ADAPTER_CONFIG_NAME);
  await refuseSpecialFile(file);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new PeftError(`no ${ADAPTER_CONFIG_NAME}; pass a PEFT adapter folder (with ${ADAPTER_CONFIG_NAME} and ${ADAPTER_WEIGHTS_NAME})`, dir);
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PeftError(`is not valid JSON (${(err as Error).message.replace(/\s+/g, ' ')})`, file);
  }
  return parseLoraConfig(json, file);
}

export interface LoraPairInfo {
  /** The model weight the pair adapts. */
  weightName: string;
  aKey: string;
  bKey: string;
  /** [r, in] and [out, r]. */
  aShape: number[];
  bShape: number[];
}

/**
 * An adapter folder opened for reading; tensors are read on demand (modules_to_save tensors of a 7B
 * model are ~800 MB each in float32, so they are not loaded until a merge needs them).
 *
 * Like PEFT, only the LoRA pairs of modules that target_modules names are the adapter's: PEFT injects
 * LoRA layers into the targeted modules only and loads the state dict non-strictly, so pairs saved for
 * other modules are dropped (PEFT 0.21 says nothing; here they are listed in `ignoredPairs`, which the
 * CLI reports as a warning). Full (modules_to_save / saved embedding) tensors are kept either way:
 * PEFT loads them onto the model by name.
 */
export class PeftAdapter {
  private constructor(
    readonly dir: string,
    readonly config: LoraConfig,
    readonly file: SafetensorsFile,
    /** Model weight name → its LoRA pair. */
    readonly loraPairs: Map<string, LoraPairInfo>,
    /** Model weight name → PEFT key of its full (modules_to_save) tensor. */
    readonly fullTensors: Map<string, string>,
    /** Weight names whose LoRA pair is in the file but not in target_modules (ignored, as PEFT does). */
    readonly ignoredPairs: string[] = [],
  ) {}

  static async open(dir: string): Promise<PeftAdapter> {
    let entries: string[];
    try {
      entries = await fs.readdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new PeftError('adapter folder not found; check the path', dir);
      if (code === 'ENOTDIR') throw new PeftError('is a file; pass the adapter folder that contains it', dir);
      throw err;
    }
    if (!entries.includes(ADAPTER_WEIGHTS_NAME)) {
      const pickles = entries.filter((e) => e.endsWith('.bin') || e.endsWith('.pt') || e.endsWith('.pth'));
      if (pickles.length > 0) throw pickleOnlyError(dir, pickles, 'adapter folder');
    }
    const config = await readAdapterConfig(dir);
    if (!entries.includes(ADAPTER_WEIGHTS_NAME)) throw new PeftError(`no ${ADAPTER_WEIGHTS_NAME} next to ${ADAPTER_CONFIG_NAME}`, dir);
    const file = await SafetensorsFile.open(path.join(dir, ADAPTER_WEIGHTS_NAME));
    try {
      const halves = new Map<string, { a?: string; b?: string }>();
      const fullTensors = new Map<string, string>();
      for (const key of file.names()) {
        const role = parsePeftKey(key);
        if (role.kind === 'full') {
          fullTensors.set(role.weightName, key);
          continue;
        }
        const pair = halves.get(role.weightName) ?? {};
        pair[role.kind === 'lora_A' ? 'a' : 'b'] = key;
        halves.set(role.weightName, pair);
      }
      const loraPairs = new Map<string, LoraPairInfo>();
      const ignoredPairs: string[] = [];
      const targets = loraTargets(config);
      for (const [weightName, { a, b }] of halves) {
        if (!a || !b)
          throw new PeftError(`'${weightName}' has ${a ? 'lora_A' : 'lora_B'} but no ${a ? 'lora_B' : 'lora_A'}; the adapter file is incomplete`, dir);
        const aShape = file.info(a).shape;
        const bShape = file.info(b).shape;
        if (aShape.length !== 2 || bShape.length !== 2 || aShape[0] !== bShape[1]) {
          throw new PeftError(`'${weightName}': lora_A [${aShape}] and lora_B [${bShape}] are not [r, in] and [out, r]`, dir);
        }
        if (aShape[0] !== config.r) {
          throw new PeftError(`'${weightName}': rank ${aShape[0]} in the weights but r = ${config.r} in ${ADAPTER_CONFIG_NAME}`, dir);
        }
        if (matchesTargetModule(weightName, targets)) loraPairs.set(weightName, { weightName, aKey: a, bKey: b, aShape, bShape });
        else ignoredPairs.push(weightName);
      }
      return new PeftAdapter(dir, config, file, loraPairs, fullTensors, ignoredPairs.sort());
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  get scaling(): number {
    return loraScaling(this.config);
  }

  /** A warning for the LoRA pairs dropped because target_modules does not name them, or undefined. */
  ignoredPairsWarning(): string | undefined {
    if (this.ignoredPairs.length === 0) return undefined;
    const kinds = [...new Set(this.ignoredPairs.map((w) => moduleNameOf(w).replace(/^.*\./, '')))].sort();
    return (
      `${this.dir}: ${ADAPTER_WEIGHTS_NAME} holds ${this.ignoredPairs.length} LoRA pairs (${kinds.join(', ')}) for modules that ` +
      `${ADAPTER_CONFIG_NAME}'s target_modules ${JSON.stringify(loraTargets(this.config))} does not name; they are ignored, as PEFT ignores them ` +
      `(add them to target_modules if they should be merged)`
    );
  }

  /** Read a LoRA pair's A [r, in] and B [out, r]. */
  async readPair(weightName: string): Promise<{ a: Float32Array; b: Float32Array; info: LoraPairInfo }> {
    const info = this.loraPairs.get(weightName);
    if (!info) throw new PeftError(`no LoRA pair for '${weightName}'`, this.dir);
    return { a: await this.file.read(info.aKey), b: await this.file.read(info.bKey), info };
  }

  /** Read a modules_to_save tensor by model weight name. */
  async readFull(weightName: string): Promise<{ shape: number[]; data: Float32Array }> {
    const key = this.fullTensors.get(weightName);
    if (!key) throw new PeftError(`no saved tensor for '${weightName}'`, this.dir);
    return { shape: this.file.info(key).shape, data: await this.file.read(key) };
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}

/** Read a whole adapter: config and every tensor, keyed by PEFT key names exactly as in the file. */
export async function readPeftAdapter(dir: string): Promise<{ config: LoraConfig; tensors: Map<string, { shape: number[]; data: Float32Array }> }> {
  const adapter = await PeftAdapter.open(dir);
  try {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const key of adapter.file.names()) tensors.set(key, { shape: adapter.file.info(key).shape, data: await adapter.file.read(key) });
    return { config: adapter.config, tensors };
  } finally {
    await adapter.close();
  }
}

/**
 * Write an adapter folder atomically: adapter_config.json + adapter_model.safetensors (F32 unless told).
 * Tensor keys must be PEFT keys (see peftLoraKeys / peftFullKey); they are checked against the config.
 */
export async function writePeftAdapter(
  dir: string,
  config: LoraConfig,
  tensors: Map<string, { shape: number[]; data: Float32Array }> | ReadonlyArray<NamedTensor>,
  opts: { force?: boolean; dtype?: 'F32' | 'F16'; extraFiles?: Record<string, string | Uint8Array> } = {},
): Promise<void> {
  const list: NamedTensor[] = Array.isArray(tensors)
    ? [...tensors]
    : [...(tensors as Map<string, { shape: number[]; data: Float32Array }>).entries()].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
  // Validate keys and ranks before touching the disk.
  parseLoraConfig(loraConfigToJson(config));
  for (const t of list) {
    const role = parsePeftKey(t.name);
    if (role.kind === 'lora_A' && t.shape[0] !== config.r) throw new PeftError(`'${t.name}' has rank ${t.shape[0]} but r = ${config.r}`);
    if (role.kind === 'lora_B' && t.shape[1] !== config.r) throw new PeftError(`'${t.name}' has rank ${t.shape[1]} but r = ${config.r}`);
  }
  list.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)); // PEFT/safetensors store keys sorted
  await writeFolderAtomic(
    dir,
    async (tmp) => {
      await writeFileAtomic(path.join(tmp, ADAPTER_CONFIG_NAME), JSON.stringify(loraConfigToJson(config), null, 2) + '\n');
      await writeSafetensors(path.join(tmp, ADAPTER_WEIGHTS_NAME), list, { dtype: opts.dtype ?? 'F32', metadata: { format: 'pt' } });
      for (const [name, content] of Object.entries(opts.extraFiles ?? {})) await writeFileAtomic(path.join(tmp, name), content);
    },
    { force: opts.force },
  );
}
