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
  // One block is filled in place; a full block is handed out and a fresh one started.
  let block = new Array<number>(blockSize);
  let fill = 0;
  for await (const raw of lines as AsyncIterable<string>) {
    const ids = tok.encode(stripEol(raw));
    for (let i = -1; i < ids.length; i++) {
      block[fill++] = i < 0 ? tok.bosId : ids[i];
      if (fill === blockSize) {
        yield block;
        block = new Array<number>(blockSize);
        fill = 0;
      }
    }
  }
}
