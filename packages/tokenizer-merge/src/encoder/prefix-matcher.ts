/**
 * SentencePiece's `PrefixMatcher`: longest match among the user-defined symbols at a position.
 * User-defined symbols are copied through the normalizer untouched and become frozen (never merged)
 * symbols in BPE. Matching works on UTF-8 bytes (normalizer) and on JS strings (BPE's initial
 * split); both give the same matches because the symbols are whole characters.
 */
interface TrieNode {
  children: Map<number, TrieNode>;
  terminal: boolean;
}

function newNode(): TrieNode {
  return { children: new Map(), terminal: false };
}

export class PrefixMatcher {
  private readonly byteRoot = newNode();
  private readonly unitRoot = newNode();
  readonly empty: boolean;

  constructor(symbols: readonly string[]) {
    const encoder = new TextEncoder();
    for (const s of symbols) {
      let node = this.byteRoot;
      for (const b of encoder.encode(s)) node = child(node, b);
      node.terminal = true;
      node = this.unitRoot;
      for (let i = 0; i < s.length; i++) node = child(node, s.charCodeAt(i));
      node.terminal = true;
    }
    this.empty = symbols.length === 0;
  }

  /** Length in bytes of the longest symbol starting at `pos`, or 0. */
  matchBytes(bytes: Uint8Array, pos: number, end: number): number {
    let node: TrieNode | undefined = this.byteRoot;
    let longest = 0;
    for (let i = pos; i < end; i++) {
      node = node.children.get(bytes[i]);
      if (!node) break;
      if (node.terminal) longest = i + 1 - pos;
    }
    return longest;
  }

  /** Length in UTF-16 code units of the longest symbol starting at `pos`, or 0. */
  matchString(text: string, pos: number): number {
    let node: TrieNode | undefined = this.unitRoot;
    let longest = 0;
    for (let i = pos; i < text.length; i++) {
      node = node.children.get(text.charCodeAt(i));
      if (!node) break;
      if (node.terminal) longest = i + 1 - pos;
    }
    return longest;
  }
}

function child(node: TrieNode, key: number): TrieNode {
  let next = node.children.get(key);
  if (!next) {
    next = newNode();
    node.children.set(key, next);
  }
  return next;
}
