/**
 * Pre-training blocks as run_clm_pt_with_peft.py builds them: every line becomes [BOS] + encode(line)
 * (no EOS), the token stream is concatenated across lines and cut into blocks of `blockSize`; the
 * final partial block is dropped. (HF's run_clm drops a remainder per map batch of 1,000 lines;
 * dropping only the final one is the cleaner equivalent the recipe uses.) Labels are the input ids.
 */
import { UsageError } from './errors.js';
import type { EncodingTokenizer } from './tokenizer.js';

/** Strip the line terminator a line reader may have left on (`\n`, `\r\n`). */
function stripEol(line: string): string {
  if (line.endsWith('\n')) line = line.slice(0, -1);
  if (line.endsWith('\r')) line = line.slice(0, -1);
  return line;
}

export async function* buildPretrainBlocks(
  lines: AsyncIterable<string> | Iterable<string>,
  tok: EncodingTokenizer,
  blockSize: number,
): AsyncGenerator<number[]> {
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    throw new UsageError(`blockSize must be a positive integer, got ${blockSize}`);
  }
  let pending: number[] = [];
  for await (const raw of lines as AsyncIterable<string>) {
    pending.push(tok.bosId);
    const ids = tok.encode(stripEol(raw));
    for (let i = 0; i < ids.length; i++) pending.push(ids[i]);
    if (pending.length >= blockSize) {
      let start = 0;
      while (pending.length - start >= blockSize) {
        yield pending.slice(start, start + blockSize);
        start += blockSize;
      }
      pending = pending.slice(start);
    }
  }
}
