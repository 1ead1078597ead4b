#!/usr/bin/env python3
"""
The Python side of `npm run test:interop`: real transformers + PEFT + tokenizers + sentencepiece,
driven by the vitest suites in interop/test with a list of jobs (one process per suite, so torch and
transformers are imported once):

    python oracle.py jobs.json results.json

jobs.json is a JSON list of {"op": ..., ...}; results.json gets one result per job, in order. A job
that raises stops the run with the job's index and the traceback on stderr (exit 1): the suite reports
it as a failure, never a skip.

Ops (paths are absolute; float arrays travel as raw little-endian float32 files):
  make_model     random LlamaForCausalLM (seeded) saved with save_pretrained: dtype, shard size, tying,
                 GQA, rope parameters as given
  forward        logits + HF causal-LM loss of a model (optionally + a PEFT adapter, unmerged or merged
                 with merge_and_unload), fp32, eager attention; logits written to "logits_out"
  save_merged    merge_and_unload() of model + adapter, saved with save_pretrained
  make_adapter   get_peft_model(LoraConfig(...)) with every trainable tensor randomised (seeded), saved
                 by PEFT's own save_pretrained: what a user's PEFT run leaves
  encode         token ids of lines with AutoTokenizer (fast / sentencepiece backend) or Python
                 sentencepiece, no special tokens added
  adapter_keys   the tensor names and shapes of an adapter_model.safetensors
"""
from __future__ import annotations

import json
import os
import sys
import traceback

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _load_model(path: str):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


def make_model(job: dict) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(int(job.get("seed", 0)))
    kv = job.get("kv_heads", job["heads"])
    rope = {"rope_type": "default", "rope_theta": float(job.get("rope_theta", 10000.0))}
    if job.get("rope_linear_factor"):
        rope = {"rope_type": "linear", "factor": float(job["rope_linear_factor"]), "rope_theta": rope["rope_theta"]}
    config = LlamaConfig(
        vocab_size=job["vocab"], hidden_size=job["hidden"], intermediate_size=job["intermediate"], num_hidden_layers=job["layers"],
        num_attention_heads=job["heads"], num_key_value_heads=kv, max_position_embeddings=job.get("max_positions", 256),
        rms_norm_eps=1e-6, tie_word_embeddings=bool(job.get("tie", False)), rope_parameters=rope, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # norms away from 1 so a wrong epsilon or a missed norm shows
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
    model.to(DTYPES[job.get("dtype", "float32")])
    kw = {"max_shard_size": job["shard_size"]} if job.get("shard_size") else {}
    model.save_pretrained(job["out"], **kw)
    return {"files": sorted(os.listdir(job["out"]))}


def _with_adapter(model, job: dict):
    if job.get("resize"):  # as a user does before loading an adapter trained on a larger vocabulary
        model.resize_token_embeddings(int(job["resize"]), mean_resizing=False)
    if not job.get("adapter"):
        return model
    from peft import PeftModel

    model = PeftModel.from_pretrained(model, job["adapter"])
    model.eval()
    return model.merge_and_unload() if job.get("merge") else model


def forward(job: dict) -> dict:
    model = _with_adapter(_load_model(job["model"]), job)
    ids = torch.tensor(job["ids"], dtype=torch.long)
    labels = torch.tensor(job["labels"], dtype=torch.long) if job.get("labels") is not None else ids.clone()
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels)
    logits = out.logits.float().numpy()
    if job.get("logits_out"):
        logits.astype("<f4").tofile(job["logits_out"])
    return {"loss": float(out.loss), "shape": list(logits.shape), "tied": bool(getattr(model.config, "tie_word_embeddings", False))}


def save_merged(job: dict) -> dict:
    model = _with_adapter(_load_model(job["model"]), {**job, "merge": True})
    model.save_pretrained(job["out"])
    return {"files": sorted(os.listdir(job["out"]))}


def make_adapter(job: dict) -> dict:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(int(job.get("seed", 0)))
    model = _load_model(job["model"])
    kw = dict(
        task_type="CAUSAL_LM", r=job.get("r", 4), lora_alpha=job.get("alpha", 8), lora_dropout=job.get("dropout", 0.0),
        target_modules=job["targets"], modules_to_save=job.get("modules_to_save") or None, use_rslora=bool(job.get("rslora", False)),
    )
    for key in ("rank_pattern", "alpha_pattern", "layers_to_transform"):
        if job.get(key):
            kw[key] = job[key]
    model = get_peft_model(model, LoraConfig(**kw))
    with torch.no_grad():  # PEFT starts with B = 0; a trained adapter has both halves non-zero, and moved copies
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p) if "lora_" in name else 0.02 * torch.randn_like(p))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    model.save_pretrained(job["out"])
    return {"files": sorted(os.listdir(job["out"])), "trainable": trainable, **adapter_keys({"dir": job["out"]})}


def adapter_keys(job: dict) -> dict:
    from safetensors import safe_open

    with safe_open(os.path.join(job["dir"], "adapter_model.safetensors"), framework="pt") as f:
        return {"keys": {k: list(f.get_slice(k).get_shape()) for k in sorted(f.keys())}}


def encode(job: dict) -> dict:
    with open(job["lines"], encoding="utf-8", newline="") as f:  # open() keeps a BOM, as a user's script would
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    backend = job["backend"]
    if backend == "spm":  # Python sentencepiece on the .model file
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=job["tokenizer"])
        ids = [sp.encode(line) for line in lines]
        kind = "SentencePieceProcessor"
    elif backend == "sentencepiece":  # transformers' sentencepiece backend (the "slow" tokenizer of transformers 5)
        from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

        tok = SentencePieceBackend(vocab_file=job["tokenizer"])
        ids = [tok.encode(line, add_special_tokens=False) for line in lines]
        kind = type(tok).__name__
    else:  # AutoTokenizer on the folder: the tokenizers (Rust) backend, tokenizer.json or converted from tokenizer.model
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(job["tokenizer"])
        # split_special_tokens: "<s>" typed in the text is text, as in SentencePiece (transformers' default maps it to BOS)
        ids = [tok.encode(line, add_special_tokens=False, split_special_tokens=True) for line in lines]
        kind = type(tok).__name__
    with open(job["out"], "w", encoding="utf-8") as f:
        for row in ids:
            f.write(" ".join(map(str, row)) + "\n")
    return {"lines": len(lines), "class": kind}


OPS = {"make_model": make_model, "forward": forward, "save_merged": save_merged, "make_adapter": make_adapter, "encode": encode, "adapter_keys": adapter_keys}


def main() -> int:
    jobs_file, results_file = sys.argv[1], sys.argv[2]
    with open(jobs_file, encoding="utf-8") as f:
        jobs = json.load(f)
    results = []
    for i, job in enumerate(jobs):
        try:
            results.append(OPS[job["op"]](job))
        except Exception:
            sys.stderr.write(f"oracle.py: job {i} ({job.get('op')}, {job.get('name', '')}) failed:\n{traceback.format_exc()}")
            return 1
    versions = {}
    for mod in ("torch", "transformers", "peft", "tokenizers", "sentencepiece", "safetensors"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            pass
    with open(results_file, "w", encoding="utf-8") as f:
        json.dump({"results": results, "versions": versions}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
