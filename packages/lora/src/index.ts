/** @cllama/lora — Safetensors, Hugging Face checkpoint folders, PEFT-compatible LoRA adapters and adapter merging. */
export const PACKAGE_NAME = '@cllama/lora';
