"""Ids and pieces of Python sentencepiece for the UNIGRAM cases bench/unigram-golden.ts writes (one JSON
job file in, one JSON result file out). Usage: see bench/unigram-golden.ts."""
import json
import sys

import sentencepiece as spm

jobs_file, out_file = sys.argv[1], sys.argv[2]
with open(jobs_file, encoding="utf-8") as f:
    jobs = json.load(f)
results = []
for job in jobs:
    sp = spm.SentencePieceProcessor(model_file=job["model"])
    results.append(
        {
            "ids": [sp.encode(t) for t in job["texts"]],
            "pieces": [sp.encode(t, out_type=str) for t in job["pieceTexts"]],
        }
    )
with open(out_file, "w", encoding="utf-8") as f:
    json.dump({"version": spm.__version__, "results": results}, f)
