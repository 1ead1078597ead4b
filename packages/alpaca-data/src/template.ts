/**
 * Prompt templates. The default is exactly the one of Chinese-LLaMA-Alpaca's build_dataset.py:
 * Stanford Alpaca's "no input" prompt, with the input (when non-empty) appended to the instruction
 * after a newline, and a trailing space after "### Response:" (it becomes a final `▁` piece).
 */
import { UsageError } from './errors.js';

export interface PromptTemplate {
  /** A short name for reports and meta.json. */
  readonly name: string;
  /** Used when the record has no input, or always when `withInput` is absent. Has `{instruction}`. */
  readonly withoutInput: string;
  /**
   * Used when the record has a non-empty input; has `{instruction}` and `{input}`. When absent, the
   * reference behaviour applies: instruction = instruction + "\n" + input, then `withoutInput`.
   */
  readonly withInput?: string;
}

/** build_dataset.py's PROMPT_TEMPLATE, byte for byte (note the trailing space). */
export const REFERENCE_TEMPLATE: PromptTemplate = {
  name: 'chinese-alpaca',
  withoutInput:
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
    '### Instruction:\n{instruction}\n\n### Response: ',
};

/** Stanford Alpaca's two prompts (input as its own section, no trailing space). */
export const STANFORD_ALPACA_TEMPLATE: PromptTemplate = {
  name: 'stanford-alpaca',
  withoutInput:
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
    '### Instruction:\n{instruction}\n\n### Response:\n',
  withInput:
    'Below is an instruction that describes a task, paired with an input that provides further context. ' +
    'Write a response that appropriately completes the request.\n\n' +
    '### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n',
};

export const TEMPLATES: Record<string, PromptTemplate> = {
  [REFERENCE_TEMPLATE.name]: REFERENCE_TEMPLATE,
  [STANFORD_ALPACA_TEMPLATE.name]: STANFORD_ALPACA_TEMPLATE,
};

/** Look up a named template, or build a custom one from a string with `{instruction}` (and optionally `{input}`). */
export function resolveTemplate(nameOrText: string | PromptTemplate | undefined): PromptTemplate {
  if (nameOrText === undefined) return REFERENCE_TEMPLATE;
  if (typeof nameOrText !== 'string') return validateTemplate(nameOrText);
  const named = TEMPLATES[nameOrText];
  if (named) return named;
  if (!nameOrText.includes('{instruction}')) {
    throw new UsageError(`unknown template '${nameOrText}': use one of ${Object.keys(TEMPLATES).join(', ')} or a custom text containing {instruction}`);
  }
  if (nameOrText.includes('{input}')) {
    // One custom text with both placeholders: used as is, an empty input fills in as "".
    return { name: 'custom', withoutInput: nameOrText, withInput: nameOrText };
  }
  return { name: 'custom', withoutInput: nameOrText };
}

function validateTemplate(t: PromptTemplate): PromptTemplate {
  if (!t.withoutInput.includes('{instruction}')) {
    throw new UsageError(`template '${t.name}': withoutInput must contain {instruction}`);
  }
  if (t.withInput !== undefined && !t.withInput.includes('{instruction}')) {
    throw new UsageError(`template '${t.name}': withInput must contain {instruction}`);
  }
  return t;
}

/**
 * Fill placeholders in one pass (like Python's str.format_map), so that braces inside the instruction
 * or input are never re-interpreted.
 */
function fill(text: string, values: Record<string, string>): string {
  return text.replace(/\{(instruction|input)\}/g, (_m, key: string) => values[key] ?? '');
}

/** The source text (prompt) for a record. "Non-empty input" means input !== undefined/null and !== "", as in the reference. */
export function formatPrompt(rec: { instruction: string; input?: string | null }, template: PromptTemplate = REFERENCE_TEMPLATE): string {
  const hasInput = rec.input !== undefined && rec.input !== null && rec.input !== '';
  if (template.withInput !== undefined) {
    return fill(hasInput ? template.withInput : template.withoutInput, { instruction: rec.instruction, input: rec.input ?? '' });
  }
  const instruction = hasInput ? `${rec.instruction}\n${rec.input}` : rec.instruction;
  return fill(template.withoutInput, { instruction, input: '' });
}
