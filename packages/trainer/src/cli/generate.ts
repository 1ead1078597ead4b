/** `cllama-train generate`: complete one prompt, streaming the text as tokens come. */
import { Command } from 'commander';
import type { Tokenizer } from '@cllama/tokenizer-merge';
import { initBackend, type BackendChoice } from '../backend.js';
import { alpacaPrompt, generateTokens, type GenerationOptions } from '../generate.js';
import { checkModelMemory } from '../memory.js';
import { loadLlama } from '../model/io.js';
import type { LlamaModel } from '../model/llama.js';
import { attachLoraFromDir } from '../model/adapter.js';
import { backendOption, parseNonNegativeInt, parseNumber, parsePositiveInt, reportBackend, UsageError } from './common.js';

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

/** Adds the model/tokenizer/backend and sampling flags shared by generate and chat. */
export function addGenerationFlags(cmd: Command): Command {
  return cmd
    .requiredOption('--model <dir>', 'Hugging Face LLaMA folder')
    .option('--lora <dir>', 'PEFT LoRA adapter folder to apply')
    .option('--tokenizer <path>', 'tokenizer (.model file or HF folder); default: the model folder')
    .option('--max-new-tokens <n>', 'most tokens to generate', parsePositiveInt('--max-new-tokens'), 128)
    .option('--greedy', 'always take the most likely token (ignores temperature/top-k/top-p)')
    .option('--temperature <t>', 'sampling temperature (default 1 when sampling)', parseNumber('--temperature', 1e-6, 100))
    .option('--top-k <k>', 'sample among the k most likely tokens', parsePositiveInt('--top-k'))
    .option('--top-p <p>', 'nucleus sampling threshold', parseNumber('--top-p', 1e-6, 1))
    .option('--repetition-penalty <r>', 'HF repetition penalty (1 = off)', parseNumber('--repetition-penalty', 1e-6, 100))
    .option('--seed <n>', 'sampling seed', parseNonNegativeInt('--seed'), 0)
    .addOption(backendOption());
}

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

export function generateCommand(): Command {
  return addGenerationFlags(new Command('generate').description('complete a prompt (tokens are printed as they come)'))
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--alpaca', 'wrap the prompt in the Alpaca instruction template')
    .action(async (flags: ModelFlags & SamplingFlags & { prompt: string; alpaca?: boolean }) => {
      const { model, tokenizer } = await loadForGeneration(flags);
      const prompt = flags.alpaca ? alpacaPrompt(flags.prompt) : flags.prompt;
      await streamCompletion(model, tokenizer, prompt, generationOptions(flags), (t) => process.stdout.write(t));
      process.stdout.write('\n');
      model.dispose();
    });
}
