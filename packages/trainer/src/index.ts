/** @cllama/trainer — LLaMA in tfjs: HF checkpoints, forward/backward, generation, and the pre-training / SFT training loop. */
export const PACKAGE_NAME = '@cllama/trainer';
