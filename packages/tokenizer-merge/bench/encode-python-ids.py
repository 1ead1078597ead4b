"""Print Python sentencepiece's ids for each line of a text file as JSON lines (cross-check tool).
Usage: /usr/bin/python3 bench/encode-python-ids.py <model> <file.txt> > ids.jsonl"""
import json, sys
import sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
with open(sys.argv[2], encoding='utf-8') as f:
    for line in f.read().split('\n'):
        print(json.dumps(sp.encode(line)))
