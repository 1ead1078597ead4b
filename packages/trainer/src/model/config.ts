/** The LLaMA config type comes from @cllama/lora, which reads and writes config.json. */
export type { LlamaConfig } from '@cllama/lora';
