"""Reference SFT examples for the demo data, computed with Python sentencepiece (the library
build_dataset.py's LlamaTokenizer wraps), formatted exactly as build_dataset.py does. Writes one
sha256 per record of the compact JSON [input_ids, labels] (plus the full ids of the first records)
to test-fixtures/data/sft_reference.json; the test suite compares our output with it.

Usage (from the repository root):
  /usr/bin/python3 packages/alpaca-data/scripts/make-sft-reference.py
"""
import hashlib
import json
import sentencepiece as spm

MODEL = 'test-fixtures/tokenizers/merged_reference.model'
FILES = ['alpaca_zh_demo.json', 'alpaca_en_demo.json']
MAX_SEQ_LENGTH = 512
IGNORE_INDEX = -100
PROMPT_TEMPLATE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response: "
)

sp = spm.SentencePieceProcessor(model_file=MODEL)
out = {
    'generator': 'packages/alpaca-data/scripts/make-sft-reference.py',
    'sentencepiece': spm.__version__,
    'model': MODEL,
    'maxSeqLength': MAX_SEQ_LENGTH,
    'hash': 'sha256 of the compact JSON [input_ids, labels]',
    'files': {},
}
for name in FILES:
    records = json.load(open(f'test-fixtures/data/{name}', encoding='utf-8'))
    hashes, first = [], []
    for rec in records:
        instruction, inp, output = rec['instruction'], rec['input'], rec['output']
        if inp is not None and inp != '':
            instruction = instruction + '\n' + inp
        source = PROMPT_TEMPLATE.format_map({'instruction': instruction})
        s = [sp.bos_id()] + sp.encode(source)
        t = sp.encode(output) + [sp.eos_id()]
        input_ids = (s + t)[:MAX_SEQ_LENGTH]
        labels = ([IGNORE_INDEX] * len(s) + t)[:MAX_SEQ_LENGTH]
        compact = json.dumps([input_ids, labels], separators=(',', ':'))
        hashes.append(hashlib.sha256(compact.encode()).hexdigest()[:32])
        if len(first) < 3:
            first.append({'input_ids': input_ids, 'labels': labels})
    out['files'][name] = {'records': len(records), 'first': first, 'sha256': hashes}
# Pre-training blocks (run_clm_pt_with_peft.py): every line -> [BOS] + ids, no EOS, concatenated,
# cut into blocks of 128, the remainder dropped. The lines: the zh demo outputs, newlines as spaces.
BLOCK = 128
zh = json.load(open('test-fixtures/data/alpaca_zh_demo.json', encoding='utf-8'))
lines = [r['output'].replace('\n', ' ') for r in zh]
stream = []
for line in lines:
    stream += [sp.bos_id()] + sp.encode(line)
n = len(stream) // BLOCK
blocks = [stream[i * BLOCK:(i + 1) * BLOCK] for i in range(n)]
out['pretrain'] = {
    'lines': 'outputs of alpaca_zh_demo.json, "\\n" replaced by " "',
    'blockSize': BLOCK,
    'blocks': n,
    'first': blocks[0],
    'last': blocks[-1],
    'sha256': hashlib.sha256(json.dumps(blocks, separators=(',', ':')).encode()).hexdigest(),
}
with open('test-fixtures/data/sft_reference.json', 'w', encoding='utf-8') as f:
    json.dump(out, f, indent=1)
    f.write('\n')
print('wrote test-fixtures/data/sft_reference.json')
