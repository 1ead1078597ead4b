/** @cllama/prompt-crawler — Self-instruct data crawler for any OpenAI-compatible chat-completions server: resumable, rate-limited, robust parsing. */
export const PACKAGE_NAME = '@cllama/prompt-crawler';
