// Writes the edge-case texts of test-fixtures/data/encoder_golden.json (then run bench/encode-golden.py to add
// Python sentencepiece ids). Usage (repo root): node packages/tokenizer-merge/bench/encode-golden-texts.mjs test-fixtures/data/encoder_golden.json
import { writeFileSync } from 'node:fs';
const texts = [
  ' ', '  ', '\t', '\n', 'a', ' hello', 'hello ', '  hello  world  ', 'multiple     spaces   here', ' \t leading tab and spaces',
  '\u3000全角空格\u3000里\u3000', 'ＡＢＣ１２３！？（全角）', 'ｈｅｌｌｏ　ｗｏｒｌｄ', '😀👍🏽👨‍👩‍👧‍👦🇨🇳', '𠀀𪚥𰻞𠮷野家',
  'control\u0000\u0001\u0007\u001b[0m chars', 'line1\r\nline2\rline3\n', 'zero\u200bwidth\u200djoiner\ufeff', 'e\u0301 café é',
  'ﬁ ﬂ ligatures ½ ⅓ ② ㍻ ℃ ™', '\ufeffBOM at start', '▁ literal ▁▁ lower block', '<s> </s> <unk> <0x41> [PAD]',
  'مرحبا بالعالم', 'שלום עולם', 'สวัสดีครับ', 'नमस्ते दुनिया', '안녕하세요 세계', 'こんにちは、世界！カタカナ', 'Привет, мир!',
  '。。。。。', '还是你们卖的就是。。。。。', '.'.repeat(40), '很差劲' + '.'.repeat(40), 'a'.repeat(300), '哈'.repeat(100), '1234567890 3.14159 2,000,000',
  'function f(x) {\n  return x * 2; // comment\n}', 'https://example.com/path?q=1&r=2#frag', '我爱NLP和深度学习!!!GPT-4很强大', 'tab\tseparated\tvalues',
  '白日依山尽，黄河入海流。欲穷千里目，更上一层楼。\nThe primary use of LLaMA is research on large language models, including',
  '   ', ' 。 ', '\u00a0non-breaking\u00a0space', '\u2028line sep\u2029para sep', '\u0085next line', 'ℌ𝔢𝔩𝔩𝔬 𝐁𝐨𝐥𝐝', '①②③ ⑴⑵ ⒈⒉', 'ｶﾀｶﾅ ﾊﾝｶｸ',
  'a'.repeat(3000), '哈'.repeat(2000), 'abc '.repeat(700), '中华人民共和国'.repeat(300),
  '\ud800 lone high, lone low \udc00', '\u00ad soft hyphen', '\u{e0041} tag char', '\u{10ffff} max code point',
];
writeFileSync(process.argv[2], JSON.stringify({ about: 'Edge-case texts with the ids and decoded text of Python sentencepiece (see bench/encode-golden.py).', texts }, null, 0));
