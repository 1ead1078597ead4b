"""Regenerate test-fixtures/data/encoder_golden.json: for each text in its "texts", the ids Python
sentencepiece (the C++ library) gives with each model, and the text it decodes those ids back to.
Usage (from the repo root): node packages/tokenizer-merge/bench/encode-golden-texts.mjs test-fixtures/data/encoder_golden.json
      then <python with sentencepiece 0.2.2, e.g. .venv-interop/bin/python> packages/tokenizer-merge/bench/encode-golden.py"""
import json
import sentencepiece as spm

PATH = 'test-fixtures/data/encoder_golden.json'
MODELS = ['llama_tokenizer', 'merged_reference', 'chinese_sp']
with open(PATH, encoding='utf-8') as f:
    golden = json.load(f)
golden['generator'] = 'Python sentencepiece ' + spm.__version__
golden['ids'] = {}
golden['decoded'] = {}
for name in MODELS:
    sp = spm.SentencePieceProcessor(model_file=f'test-fixtures/tokenizers/{name}.model')
    # A JS string reaches SentencePiece as UTF-8, where a lone surrogate becomes U+FFFD.
    texts = [''.join('\ufffd' if 0xD800 <= ord(c) <= 0xDFFF else c for c in t) for t in golden['texts']]
    ids = [sp.encode(t) for t in texts]
    golden['ids'][name] = ids
    golden['decoded'][name] = [sp.decode(x) for x in ids]
with open(PATH + '.tmp', 'w', encoding='utf-8') as f:
    json.dump(golden, f, separators=(',', ':'))
import os
os.replace(PATH + '.tmp', PATH)
