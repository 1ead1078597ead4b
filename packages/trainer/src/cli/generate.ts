/** `cllama-train generate`: complete one prompt, streaming the text as tokens come. */
import { type ArgsDef, defineCommand } from '@cllama/core';
import type { Tokenizer } from '@cllama/tokenizer-merge';
import { initBackend, type BackendChoice } from '../backend.js';
import { alpacaPrompt, generateTokens, type GenerationOptions } from '../generate.js';
import { checkModelMemory } from '../memory.js';
import { loadLlama } from '../model/io.js';
import type { LlamaModel } from '../model/llama.js';
import { attachLoraFromDir } from '../model/adapter.js';
import { BACKEND_ARG, parseNonNegativeInt, parseNumber, parsePositiveInt, reportBackend, UsageError } from './common.js';

export interface ModelFlags {
  model: string;
  lora?: string;
  tokenizer?: string;
  backend: BackendChoice;
}

export interface SamplingFlags {
  maxNewTokens: number;
  greedy?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed: number;
}

/** The model/tokenizer/backend and sampling flags shared by generate and chat. */
export const GENERATION_ARGS: ArgsDef = {
  model: { type: 'string', valueHint: 'dir', description: 'Hugging Face LLaMA folder', required: true },
  lora: { type: 'string', valueHint: 'dir', description: 'PEFT LoRA adapter folder to apply' },
  tokenizer: { type: 'string', valueHint: 'path', description: 'tokenizer (.model file or HF folder); default: the model folder' },
  'max-new-tokens': { type: 'string', valueHint: 'n', description: 'most tokens to generate', parse: parsePositiveInt('--max-new-tokens'), default: 128 },
  greedy: { type: 'boolean', description: 'always take the most likely token (ignores temperature/top-k/top-p)' },
  temperature: {
    type: 'string',
    valueHint: 't',
    description: 'sampling temperature (default 1 when sampling)',
    parse: parseNumber('--temperature', 1e-6, 100),
  },
  'top-k': { type: 'string', valueHint: 'k', description: 'sample among the k most likely tokens', parse: parsePositiveInt('--top-k') },
  'top-p': { type: 'string', valueHint: 'p', description: 'nucleus sampling threshold', parse: parseNumber('--top-p', 1e-6, 1) },
  'repetition-penalty': {
    type: 'string',
    valueHint: 'r',
    description: 'HF repetition penalty (1 = off)',
    parse: parseNumber('--repetition-penalty', 1e-6, 100),
  },
  seed: { type: 'string', valueHint: 'n', description: 'sampling seed', parse: parseNonNegativeInt('--seed'), default: 0 },
  backend: BACKEND_ARG,
};

export function generationOptions(flags: SamplingFlags): GenerationOptions {
  const sampling = flags.temperature !== undefined || flags.topK !== undefined || flags.topP !== undefined;
  return {
    maxNewTokens: flags.maxNewTokens,
    doSample: !flags.greedy && sampling,
    temperature: flags.temperature,
    topK: flags.topK,
    topP: flags.topP,
    repetitionPenalty: flags.repetitionPenalty,
    seed: flags.seed,
  };
}

export async function loadForGeneration(flags: ModelFlags): Promise<{ model: LlamaModel; tokenizer: Tokenizer }> {
  const { loadTokenizer } = await import('@cllama/tokenizer-merge');
  const tokenizer = await loadTokenizer(flags.tokenizer ?? flags.model).catch((err: Error) => {
    throw new UsageError(`cannot load a tokenizer from ${flags.tokenizer ?? flags.model} (${err.message}); pass --tokenizer <tokenizer.model or HF folder>`);
  });
  const backend = await initBackend(flags.backend); // after the inputs are checked: no tfjs banner before a usage error
  await checkModelMemory(flags.model, { kind: 'inference', batchSize: 1, seqLen: 512 }, { backend: backend.name });
  const model = await loadLlama(flags.model);
  try {
    // after the adapter: its saved embed_tokens / lm_head may grow the vocabulary
    if (flags.lora) await attachLoraFromDir(model, flags.lora);
    if (tokenizer.vocabSize > model.config.vocabSize) {
      throw new UsageError(
        `the tokenizer has ${tokenizer.vocabSize} tokens but the model's embedding only ${model.config.vocabSize} (ids ${model.config.vocabSize}…${tokenizer.vocabSize - 1} have no row): wrong --tokenizer?`,
      );
    }
  } catch (err) {
    model.dispose();
    throw err;
  }
  reportBackend(backend);
  return { model, tokenizer };
}

/** Generates from `prompt`, writing decoded text to `write` as it grows; returns the completion. */
export async function streamCompletion(
  model: LlamaModel,
  tokenizer: Tokenizer,
  prompt: string,
  opts: GenerationOptions,
  write: (text: string) => void,
): Promise<string> {
  const promptIds = tokenizer.encode(prompt, { addBos: true });
  const generated: number[] = [];
  let printed = '';
  // a padded embedding (more rows than the tokenizer has pieces): only ids the tokenizer can decode are generated
  for await (const id of generateTokens(model, promptIds, { ...opts, eosTokenId: tokenizer.eosId, vocabLimit: tokenizer.vocabSize })) {
    if (id === tokenizer.eosId) break;
    generated.push(id);
    const text = tokenizer.decode(generated);
    // A multi-byte character split over byte tokens decodes to U+FFFD until its last byte arrives.
    if (!text.endsWith('\uFFFD') && text.startsWith(printed)) {
      write(text.slice(printed.length));
      printed = text;
    }
  }
  const final = tokenizer.decode(generated);
  if (final.startsWith(printed)) write(final.slice(printed.length));
  return final;
}

export const generateCommand = defineCommand<ModelFlags & SamplingFlags & { prompt: string; alpaca?: boolean }>({
  meta: {
    name: 'generate',
    description: 'complete a prompt (tokens are printed as they come)',
    example: 'cllama-train generate --model chinese-alpaca-7b --prompt "为什么天空是蓝色的？" --alpaca --temperature 0.7',
  },
  args: {
    ...GENERATION_ARGS,
    prompt: { type: 'string', valueHint: 'text', description: 'the prompt', required: true },
    alpaca: { type: 'boolean', description: 'wrap the prompt in the Alpaca instruction template' },
  },
  run: async ({ args: flags }) => {
    const { model, tokenizer } = await loadForGeneration(flags);
    const prompt = flags.alpaca ? alpacaPrompt(flags.prompt) : flags.prompt;
    await streamCompletion(model, tokenizer, prompt, generationOptions(flags), (t) => process.stdout.write(t));
    process.stdout.write('\n');
    model.dispose();
  },
});
