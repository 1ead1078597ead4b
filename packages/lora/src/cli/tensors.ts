/** `cllama-lora tensors`: the tensors of a .safetensors file or HF model folder, one per line (name, dtype, shape). */
import { defineCommand } from '@cllama/core';
import { HFCheckpoint } from '../hf-checkpoint.js';
import { SafetensorsFile } from '../safetensors.js';

export const tensorsCommand = defineCommand<{ path: string }>({
  meta: {
    name: 'tensors',
    description: 'list the tensors of a .safetensors file or HF model folder (name, dtype, shape)',
    example: 'cllama-lora tensors chinese-alpaca-7b',
  },
  args: {
    path: { type: 'positional', description: 'file or folder' },
  },
  run: async ({ args: { path: target } }) => {
    const source = target.endsWith('.safetensors') ? await SafetensorsFile.open(target) : await HFCheckpoint.open(target);
    try {
      for (const n of source.names()) console.log(`${n}\t${source.info(n).dtype}\t[${source.info(n).shape.join(', ')}]`);
    } finally {
      await source.close();
    }
  },
});
