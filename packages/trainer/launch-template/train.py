#!/usr/bin/env python3
"""
train.py — runs a cllama-train pre-training or SFT job with torchrun + transformers Trainer + peft.

Written by `cllama-train pretrain|sft ... --emit-launch <dir>` next to:
  data/            the token stream cllama-train would train on, tokenized by cllama's own pipeline:
                   <split>_input_ids.bin (int32 LE, all records back to back), <split>_offsets.bin
                   (int64 LE, count+1 record boundaries), <split>_labels.bin (int32 LE, SFT only;
                   -100 = not trained) and meta.json (counts, pad id, vocabulary size, sources)
  tokenizer/       the tokenizer files (copied into the output folder at the end)
  launch.json      every cllama-train flag, the argument of this script it became (the defaults
                   below are read from its "train_py_args"), and the flags that have no meaning here
  ds_zero2.json    DeepSpeed ZeRO-2 config (used when deepspeed is importable)
  launch.sh        torchrun wrapper (nodes x GPUs)

The algorithm is HF Trainer's; what this script adds around it:
  - no tokenization: records are read from the memmaps; the collator right-pads input ids with the
    pad id and labels with -100 to the longest record of the batch, exactly as cllama's collate does
    (the attention mask is 1 on the record's own tokens, 0 on padding);
  - what trains follows cllama's trainablePlan: "embeddings" (pre-training stage 1: embed_tokens only,
    lm_head frozen), "lora" (stage 2 / SFT: LoRA on --trainable + modules_to_save), "full";
  - --peft_path is loaded with is_trainable=True (current peft loads adapters frozen by default, so a
    "continued" run would silently train nothing); the trainable count is printed and must be > 0;
  - trainable weights are kept in float32 (fp16 AMP cannot unscale half gradients), the frozen base
    may be loaded in bf16/fp16 for LoRA runs;
  - the run starts from exactly cllama-train's starting weights: a vocabulary resize draws the new
    embed_tokens / lm_head rows with cllama's own seeded mean-resizing (resized_rows below, a port of
    packages/trainer/src/model/resize.ts), not transformers' mean_resizing (torch's generator);
  - the records are visited in cllama-train's epoch order (epoch_order below: a port of its seeded
    xoshiro128** permutation), sharded across processes by accelerate: one optimizer step covers the
    records one cllama-train step of per_device_train_batch_size x processes x accumulation would;
  - DeepSpeed ZeRO-2 when `import deepspeed` works, else plain torchrun DDP; the choice is printed;
    without CUDA it runs on the CPU (use_cpu, gloo): every process is a data-parallel rank, never a
    lone trainer;
  - the final adapter is gathered (accelerator.get_state_dict) before saving, checked to be non-empty
    and finite, written in PEFT layout (adapter_model.safetensors + adapter_config.json) and read back;
  - fp16 loss-scale collapse (scale under --min_loss_scale, or a non-finite logged loss) stops the run
    with a message instead of saving NaNs;
  - metrics.jsonl in cllama's format ({step, epoch, loss, learning_rate, grad_norm, tokens_per_second}
    and {step, epoch, eval_loss, eval_perplexity}), so the recipe report reads it.
Known differences from cllama-train: LoRA A is initialised by torch's generator and dropout masks are
torch's (B starts at zero, so with --lora_dropout 0 the first step's loss is the same; later steps
drift apart by that much), the last batch of an epoch is sharded as accelerate does, and SFT losses under gradient accumulation are token-weighted (HF) rather than the mean of
micro-batch means.

The dataset, collator and metrics helpers import only numpy, so they can be tested without torch.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
IGNORE_INDEX = -100
META_FORMAT = "cllama-launch-data/1"


def log(msg: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"[train.py] {msg}", flush=True)


class LaunchError(Exception):
    """A problem the user must fix; printed as one line, exit code 1."""


# ----------------------------------------------------------------------------------------------
# data: memmaps written by cllama-train --emit-launch


def read_meta(data_dir: str) -> dict:
    path = os.path.join(data_dir, "meta.json")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except OSError as e:
        raise LaunchError(f"{path}: cannot read it ({e}); run train.py from the folder cllama-train --emit-launch wrote") from e
    if meta.get("format") != META_FORMAT:
        raise LaunchError(f"{path}: format {meta.get('format')!r} is not {META_FORMAT!r}; re-emit the folder with this cllama-train")
    return meta


class TokenDataset:
    """Records of one split, read on demand from the memmaps (numpy only; torch-free)."""

    def __init__(self, data_dir: str, split: str, meta: dict | None = None):
        meta = meta if meta is not None else read_meta(data_dir)
        info = meta["splits"].get(split)
        if info is None:
            raise LaunchError(f"{data_dir}: no split {split!r} in meta.json")
        self.split = split
        files = info["files"]
        count, tokens = int(info["count"]), int(info["num_tokens"])
        self.input_ids = self._map(data_dir, files["input_ids"], np.dtype("<i4"), tokens)
        self.offsets = np.fromfile(os.path.join(data_dir, files["offsets"]), dtype="<i8")
        if self.offsets.shape[0] != count + 1 or int(self.offsets[0]) != 0 or int(self.offsets[-1]) != tokens or np.any(np.diff(self.offsets) < 0):
            raise LaunchError(f"{data_dir}/{files['offsets']}: offsets do not match meta.json ({count} records, {tokens} tokens); re-emit the folder")
        self.labels = self._map(data_dir, files["labels"], np.dtype("<i4"), tokens) if files.get("labels") else None
        self.count = count

    @staticmethod
    def _map(data_dir: str, name: str, dtype: np.dtype, n: int):
        path = os.path.join(data_dir, name)
        size = os.path.getsize(path)
        if size != n * dtype.itemsize:
            raise LaunchError(f"{path} has {size} bytes, meta.json says {n} tokens ({n * dtype.itemsize} bytes); re-emit the folder")
        return np.memmap(path, dtype=dtype, mode="r", shape=(n,)) if n > 0 else np.zeros((0,), dtype=dtype)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict:
        if i < 0:
            i += self.count
        if not 0 <= i < self.count:
            raise IndexError(i)
        s, e = int(self.offsets[i]), int(self.offsets[i + 1])
        ids = np.array(self.input_ids[s:e], dtype=np.int64)
        labels = np.array(self.labels[s:e], dtype=np.int64) if self.labels is not None else ids.copy()
        return {"input_ids": ids, "labels": labels}


def pad_batch(features: list, pad_id: int) -> dict:
    """cllama's collate: right-pad ids with pad_id and labels with -100 to the longest record."""
    if not features:
        raise ValueError("empty batch")
    width = max(len(f["input_ids"]) for f in features)
    n = len(features)
    input_ids = np.full((n, width), pad_id, dtype=np.int64)
    labels = np.full((n, width), IGNORE_INDEX, dtype=np.int64)
    attention_mask = np.zeros((n, width), dtype=np.int64)
    for b, f in enumerate(features):
        k = len(f["input_ids"])
        input_ids[b, :k] = f["input_ids"]
        labels[b, :k] = f["labels"]
        attention_mask[b, :k] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


class Collator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list) -> dict:
        import torch

        return {k: torch.from_numpy(v) for k, v in pad_batch(features, self.pad_id).items()}


# ----------------------------------------------------------------------------------------------
# cllama's seeded streams, ported (numpy only): the data order and the rows of a resized vocabulary.
# Changing them breaks "the launched run starts where cllama-train starts"; the emit-launch tests
# compare both with the TypeScript originals (packages/core/src/random.ts, trainer/src/model/resize.ts).

_M32 = 0xFFFFFFFF


def _splitmix32(seed: int):
    x = seed & _M32

    def nxt() -> int:
        nonlocal x
        x = (x + 0x9E3779B9) & _M32
        z = ((x ^ (x >> 16)) * 0x85EBCA6B) & _M32
        z = ((z ^ (z >> 13)) * 0xC2B2AE35) & _M32
        return (z ^ (z >> 16)) & _M32

    return nxt


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """cllama-train's order of epoch `epoch` over n records: Xoshiro128.fromSeed(seed, epoch).permutation(n)."""
    mixed = (_splitmix32((seed & _M32) ^ (((epoch + 1) * 0x27D4EB2D) & _M32))() ^ epoch) & _M32
    nxt = _splitmix32(mixed)
    s0, s1, s2, s3 = nxt(), nxt(), nxt(), nxt()
    out = np.arange(n, dtype=np.int64)
    for i in range(n - 1, 0, -1):
        bound = i + 1
        limit = 4294967296 - (4294967296 % bound)
        while True:  # nextInt: rejection sampling on xoshiro128** draws
            x = ((_rotl((s1 * 5) & _M32, 7) * 9) & _M32)
            t = (s1 << 9) & _M32
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = _rotl(s3, 11)
            if x < limit:
                break
        j = x % bound
        out[i], out[j] = out[j], out[i]
    return out


class Mulberry32Normals:
    """
    Mulberry32.scrambled(seed).normal() (Box-Muller, the spare kept, a zero u redrawn), vectorised: the
    k-th uniform of mulberry32 depends on k alone (state0 + k * 0x6D2B79F5), so draws come in chunks.
    """

    CHUNK_PAIRS = 1 << 20

    def __init__(self, seed: int):
        self.state0 = (int(seed) ^ 0x9E3779B9) & _M32
        self.k = 1  # index of the next uniform
        self.spare: float | None = None

    def _uniforms(self, n: int) -> np.ndarray:
        m = np.uint64(_M32)
        t = (np.uint64(self.state0) + np.arange(self.k, self.k + n, dtype=np.uint64) * np.uint64(0x6D2B79F5)) & m
        t = ((t ^ (t >> np.uint64(15))) * (t | np.uint64(1))) & m
        t = t ^ ((t + (((t ^ (t >> np.uint64(7))) * (t | np.uint64(61))) & m)) & m)
        return ((t ^ (t >> np.uint64(14))) & m).astype(np.float64) / 4294967296.0

    def take(self, count: int) -> np.ndarray:
        out = np.empty(count, dtype=np.float64)
        filled = 0
        if count and self.spare is not None:
            out[0], self.spare, filled = self.spare, None, 1
        while filled < count:
            pairs = min((count - filled + 1) // 2, self.CHUNK_PAIRS)
            u = self._uniforms(2 * pairs)
            zero = np.flatnonzero(u[0::2] == 0)
            good = int(zero[0]) if zero.size else pairs  # pairs before a zero u (normal() draws u again there)
            r = np.sqrt(-2.0 * np.log(u[0 : 2 * good : 2]))
            angle = 2 * math.pi * u[1 : 2 * good : 2]
            z = np.empty(2 * good, dtype=np.float64)
            z[0::2] = r * np.cos(angle)
            z[1::2] = r * np.sin(angle)
            n = min(2 * good, count - filled)
            out[filled : filled + n] = z[:n]
            if n < 2 * good:
                self.spare = float(z[n])
            filled += n
            self.k += 2 * good + (1 if zero.size else 0)
        return out


def resized_rows(old: np.ndarray, new_rows: int, seed: int) -> np.ndarray:
    """
    cllama's resizedEmbeddingRows: the first rows kept; new rows ~ N(mean, 1e-9 cov) of the old rows,
    drawn from Mulberry32.scrambled(seed), or exactly the mean when 1e-9 cov is not positive definite
    (transformers' mean_resizing rule, with cllama's generator). float32 [new_rows, width].
    """
    old = np.asarray(old, dtype=np.float32)
    old_rows, width = old.shape
    out = np.empty((new_rows, width), dtype=np.float32)
    out[: min(old_rows, new_rows)] = old[:new_rows]
    added = new_rows - old_rows
    if added <= 0:
        return out
    x = old.astype(np.float64)
    mean = x.mean(axis=0)
    centered = x - mean
    cov = (centered.T @ centered) / old_rows * 1e-9
    try:
        factor = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        factor = None
    if factor is None:
        out[old_rows:] = mean.astype(np.float32)
        return out
    normals = Mulberry32Normals(seed)
    step = max(1, (1 << 22) // width)  # rows per chunk: memory stays ~32 MB of normals whatever the vocabulary
    for start in range(old_rows, new_rows, step):
        rows = min(step, new_rows - start)
        z = normals.take(rows * width).reshape(rows, width)
        out[start : start + rows] = (mean + z @ factor.T).astype(np.float32)
    return out


# ----------------------------------------------------------------------------------------------
# metrics.jsonl in cllama's format (packages/trainer/src/train/loop.ts)


def cllama_entry(logs: dict, step: int, epoch: float | None, tokens_per_second: float | None) -> dict | None:
    """One HF log dict as a cllama metrics line; None for entries cllama does not log (runtime summaries)."""
    ep = round(float(epoch if epoch is not None else logs.get("epoch", 0.0)), 4)
    if "eval_loss" in logs:
        loss = float(logs["eval_loss"])
        ppl = math.exp(loss) if loss < 700 else float("inf")
        return {"step": int(step), "epoch": ep, "eval_loss": round(loss, 6), "eval_perplexity": round(ppl, 4)}
    if "loss" in logs:
        entry = {"step": int(step), "epoch": ep, "loss": round(float(logs["loss"]), 6)}
        if "learning_rate" in logs:
            entry["learning_rate"] = float(logs["learning_rate"])
        if logs.get("grad_norm") is not None:
            entry["grad_norm"] = round(float(logs["grad_norm"]), 6)
        if tokens_per_second is not None:
            entry["tokens_per_second"] = round(float(tokens_per_second), 1)
        return entry
    return None


def write_lines_atomic(path: str, entries: list) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps(e, allow_nan=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# arguments: defaults from launch.json "train_py_args", command line wins


def parse_args(argv: list | None = None) -> argparse.Namespace:
    launch_json = os.path.join(HERE, "launch.json")
    defaults: dict = {}
    if os.path.exists(launch_json):
        with open(launch_json, encoding="utf-8") as f:
            defaults = json.load(f).get("train_py_args", {})
    p = argparse.ArgumentParser(description="cllama-train job on transformers Trainer + peft (see launch.json for where each value came from)")
    b = lambda s: str(s).lower() in ("1", "true", "yes")  # noqa: E731
    opt = lambda s: None if s in (None, "", "none", "None") else s  # noqa: E731
    p.add_argument("--model_name_or_path")
    p.add_argument("--output_dir")
    p.add_argument("--data_dir", default=os.path.join(HERE, "data"))
    p.add_argument("--tokenizer_dir", default=os.path.join(HERE, "tokenizer"))
    p.add_argument("--train_kind", choices=["embeddings", "lora", "full"])
    p.add_argument("--peft_path", type=opt)
    p.add_argument("--lora_rank", type=int)
    p.add_argument("--lora_alpha", type=float)
    p.add_argument("--lora_dropout", type=float)
    p.add_argument("--trainable", help="comma-separated LoRA target modules")
    p.add_argument("--modules_to_save", help="comma-separated")
    p.add_argument("--per_device_train_batch_size", type=int)
    p.add_argument("--per_device_eval_batch_size", type=int)
    p.add_argument("--gradient_accumulation_steps", type=int)
    p.add_argument("--num_train_epochs", type=float)
    p.add_argument("--max_steps", type=int)
    p.add_argument("--learning_rate", type=float)
    p.add_argument("--lr_scheduler_type")
    p.add_argument("--warmup_ratio", type=float)
    p.add_argument("--warmup_steps", type=int)
    p.add_argument("--weight_decay", type=float)
    p.add_argument("--adam_beta1", type=float)
    p.add_argument("--adam_beta2", type=float)
    p.add_argument("--adam_epsilon", type=float)
    p.add_argument("--max_grad_norm", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--logging_steps", type=int)
    p.add_argument("--logging_first_step", type=b)
    p.add_argument("--eval_steps", type=lambda s: None if opt(s) is None else int(s))
    p.add_argument("--save_steps", type=int)
    p.add_argument("--save_total_limit", type=lambda s: None if opt(s) is None else int(s))
    p.add_argument("--max_eval_samples", type=lambda s: None if opt(s) is None else int(s))
    p.add_argument("--do_eval", type=b)
    p.add_argument("--disable_tqdm", type=b)
    p.add_argument("--overwrite_output_dir", type=b)
    p.add_argument("--resume_from_checkpoint", type=opt)
    p.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"], help="auto: bf16 where the GPU supports it, else fp16; fp32 on CPU")
    p.add_argument("--torch_dtype", choices=["auto", "float32", "bfloat16", "float16"], help="dtype of the frozen base weights; auto: float32 for embeddings/full runs, the precision's half type for LoRA")
    p.add_argument("--gradient_checkpointing", type=b)
    p.add_argument("--deepspeed", type=opt, help="DeepSpeed config; 'auto' = ds_zero2.json when deepspeed is importable, 'none' = plain DDP")
    p.add_argument("--min_loss_scale", type=float, help="fp16: stop when the loss scale falls below this")
    p.add_argument("--dataloader_num_workers", type=int)
    p.add_argument("--ddp_timeout", type=int)
    p.add_argument("--log_rank_losses", type=b, help="every process prints its own micro-batch losses (to see the ranks share the work)")
    builtin = {
        "precision": "auto", "torch_dtype": "auto", "gradient_checkpointing": True, "deepspeed": "auto",
        "min_loss_scale": 1e-4, "dataloader_num_workers": 0, "ddp_timeout": 1800, "overwrite_output_dir": False,
        "do_eval": False, "logging_first_step": False, "disable_tqdm": False, "log_rank_losses": False,
    }
    p.set_defaults(**{**builtin, **defaults})
    args = p.parse_args(argv)
    for required in ("model_name_or_path", "output_dir", "train_kind"):
        if getattr(args, required) in (None, ""):
            raise LaunchError(f"--{required} is not set (launch.json has no value for it); pass it on the command line")
    return args


# ----------------------------------------------------------------------------------------------
# the run (torch / transformers / peft imported here only)


def pick_deepspeed(args) -> str | None:
    if args.deepspeed in (None, "none"):
        log("DeepSpeed: off (--deepspeed none); torchrun DDP")
        return None
    if args.deepspeed != "auto":
        return args.deepspeed
    try:
        import deepspeed  # noqa: F401
    except Exception as e:  # ImportError, or a broken CUDA build
        log(f"DeepSpeed: not importable ({type(e).__name__}: {e}); using plain torchrun DDP instead (same math, more memory per GPU)")
        return None
    cfg = os.path.join(HERE, "ds_zero2.json")
    log(f"DeepSpeed: ZeRO stage 2 with {cfg}")
    return cfg


def pick_precision(args, torch) -> str:
    if args.precision != "auto":
        return args.precision
    if not torch.cuda.is_available():
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def training_arguments(transformers, kw: dict):
    """TrainingArguments from the names of transformers 4.4x; renamed/removed fields are mapped or dropped (and said)."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(transformers.TrainingArguments)}
    if "evaluation_strategy" in kw and "evaluation_strategy" not in fields:
        kw["eval_strategy"] = kw.pop("evaluation_strategy")
    if "warmup_ratio" in kw and "warmup_ratio" not in fields:
        # transformers 5.15+ folds the ratio into warmup_steps: a float < 1 is a ratio, but 1 means one step
        ratio = float(kw.pop("warmup_ratio") or 0)
        if not kw.get("warmup_steps") and ratio > 0:
            if ratio < 1:
                kw["warmup_steps"] = ratio
            elif kw.get("max_steps", -1) > 0:
                kw["warmup_steps"] = int(kw["max_steps"])
            else:
                raise LaunchError("--warmup_ratio 1 needs --max_steps with this transformers (its warmup_steps=1 means one step)")
    # fields that only older transformers have and whose behaviour newer ones always have (5: always safetensors)
    for quiet in ("save_safetensors",):
        if quiet not in fields:
            kw.pop(quiet, None)
    dropped = sorted(k for k in kw if k not in fields)
    if dropped:
        log(f"this transformers has no TrainingArguments {', '.join(dropped)}; left out")
    return transformers.TrainingArguments(**{k: v for k, v in kw.items() if k in fields})


def check_output_dir(args) -> str | None:
    """run_clm's rules: resume from the last checkpoint-N; refuse other content unless --overwrite_output_dir."""
    if args.resume_from_checkpoint:
        return args.resume_from_checkpoint
    if not os.path.isdir(args.output_dir):
        return None
    names = os.listdir(args.output_dir)
    ckpts = sorted((int(n.split("-")[1]), n) for n in names if n.startswith("checkpoint-") and n.split("-")[1].isdigit())
    if args.overwrite_output_dir:
        # as cllama-train: starting over removes the previous run's checkpoints (nothing else)
        if int(os.environ.get("RANK", "0")) == 0:
            for _, name in ckpts:
                log(f"--overwrite_output_dir: removing {name}")
                shutil.rmtree(os.path.join(args.output_dir, name))
        return None
    if ckpts:
        return os.path.join(args.output_dir, ckpts[-1][1])
    leftovers = [n for n in names if n not in ("metrics.jsonl", "runs")]
    if leftovers:
        raise LaunchError(f"output dir {args.output_dir} is not empty and holds no checkpoint-N to resume; pass --overwrite_output_dir true or choose another OUTPUT_DIR")
    return None


def adapter_vocab(peft_path: str) -> int | None:
    """Rows of the embed_tokens/lm_head saved in an adapter (its vocabulary), without loading it."""
    from safetensors import safe_open

    path = os.path.join(peft_path, "adapter_model.safetensors")
    if not os.path.exists(path):
        return None
    with safe_open(path, framework="pt") as f:
        for k in f.keys():
            if k.endswith("embed_tokens.weight") or k.endswith("lm_head.weight"):
                return int(f.get_slice(k).get_shape()[0])
    return None


def resize_like_cllama(model, vocab: int, seed: int, torch) -> None:
    """
    cllama-train's resize (HF: resize_token_embeddings(len(tokenizer)) first thing): new embed_tokens rows
    from resized_rows(seed), new lm_head rows from resized_rows(seed + 1) when untied, kept rows as they
    are; transformers' own mean_resizing would draw them from torch's generator instead.
    """
    embed = model.get_input_embeddings().weight
    rows = embed.shape[0]
    if rows == vocab:
        return
    log(f"resizing the token embeddings {rows} -> {vocab} (cllama's seeded mean-resizing, seed {seed})")
    head = model.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == embed.data_ptr()
    olds = [embed.detach().float().cpu().numpy()] + ([] if tied or head is None else [head.weight.detach().float().cpu().numpy()])
    model.resize_token_embeddings(vocab, mean_resizing=False)
    news = [model.get_input_embeddings().weight] + ([] if tied or head is None else [model.get_output_embeddings().weight])
    with torch.no_grad():
        for i, (old, param) in enumerate(zip(olds, news)):
            param.copy_(torch.from_numpy(resized_rows(old, vocab, seed + i)).to(param.dtype))


class EpochOrderSampler:
    """cllama-train's record order: epoch e visits epoch_order(seed, e, n); HF calls set_epoch before each epoch."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(epoch_order(self.seed, self.epoch, self.n).tolist())


def main(argv: list | None = None) -> int:
    args = parse_args(argv)
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback

    meta = read_meta(args.data_dir)
    train_ds = TokenDataset(args.data_dir, "train", meta)
    eval_ds = TokenDataset(args.data_dir, "eval", meta) if "eval" in meta["splits"] and meta["splits"]["eval"]["count"] > 0 else None
    if args.do_eval and eval_ds is None:
        raise LaunchError("--do_eval needs the eval split, and data/ has none; re-emit with a validation file or --validation-split-percentage > 0")
    if eval_ds is not None and args.max_eval_samples is not None and args.max_eval_samples < len(eval_ds):
        import torch.utils.data as tud

        eval_ds = tud.Subset(eval_ds, list(range(args.max_eval_samples)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    log(f"{meta['mode']} ({args.train_kind}): {len(train_ds)} train / {len(eval_ds) if eval_ds is not None else 0} eval records, "
        f"{world} process(es), transformers {transformers.__version__}, torch {torch.__version__}")

    precision = pick_precision(args, torch)
    ds_config = pick_deepspeed(args)
    if ds_config is None and world > 1:
        log(f"torchrun DDP over {world} processes")
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    load_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(args.torch_dtype)
    if load_dtype is None:  # auto
        load_dtype = half if (args.train_kind == "lora" and half is not None) else torch.float32
    log(f"precision {precision}; base weights loaded as {str(load_dtype).replace('torch.', '')}; trainable weights float32")

    resume = check_output_dir(args)
    if resume:
        log(f"resuming from {resume}")
    transformers.set_seed(args.seed)  # as run_clm_pt: LoRA A's initialisation is then the same on every run
    dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, **{dtype_kw: load_dtype})
    vocab = int(meta["tokenizer"]["vocab_size"])
    if args.peft_path:
        vocab = max(vocab, adapter_vocab(args.peft_path) or 0)
    resize_like_cllama(model, vocab, args.seed, torch)
    model.config.use_cache = False

    if args.train_kind == "lora":
        from peft import LoraConfig, PeftModel, TaskType, get_peft_model

        if args.peft_path:
            # the adapter's own r/alpha/targets win, as in cllama-train; is_trainable=True or nothing trains
            model = PeftModel.from_pretrained(model, args.peft_path, is_trainable=True)
            log(f"continuing the adapter {args.peft_path} (is_trainable=True)")
        else:
            config = LoraConfig(
                task_type=TaskType.CAUSAL_LM, r=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                target_modules=[t for t in args.trainable.split(",") if t], modules_to_save=[m for m in (args.modules_to_save or "").split(",") if m] or None,
                bias="none", inference_mode=False,
            )
            model = get_peft_model(model, config)
        # every save (checkpoint-N too, through Trainer._save) writes embed_tokens / lm_head as modules_to_save only:
        # with a resized vocabulary PEFT's "auto" would add the frozen base layers under keys no loader expects
        peft_save = model.save_pretrained
        model.save_pretrained = lambda *a, **kw: peft_save(*a, **{"save_embedding_layers": False, **kw})
    elif args.train_kind == "embeddings":
        # cllama's stage 1: embed_tokens only; lm_head stays frozen
        for name, param in model.named_parameters():
            param.requires_grad = name.endswith("embed_tokens.weight")
    else:
        for param in model.parameters():
            param.requires_grad = True
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    for _, param in trainable:
        if param.dtype != torch.float32:
            param.data = param.data.float()
    n_train = sum(p.numel() for _, p in trainable)
    n_all = sum(p.numel() for p in model.parameters())
    if n_train == 0:
        raise LaunchError("nothing is trainable (an adapter loaded frozen?); check --peft_path and --train_kind")
    log(f"trainable parameters: {n_train:,} of {n_all:,} ({100 * n_train / n_all:.2f}%) in {len(trainable)} tensors")
    if args.gradient_checkpointing:
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()

    kw = dict(
        output_dir=args.output_dir, per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size, gradient_accumulation_steps=args.gradient_accumulation_steps,
        num_train_epochs=args.num_train_epochs, max_steps=args.max_steps, learning_rate=args.learning_rate,
        lr_scheduler_type=args.lr_scheduler_type, warmup_ratio=args.warmup_ratio, warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay, adam_beta1=args.adam_beta1, adam_beta2=args.adam_beta2, adam_epsilon=args.adam_epsilon,
        max_grad_norm=args.max_grad_norm, seed=args.seed, data_seed=args.seed, logging_steps=args.logging_steps,
        logging_first_step=args.logging_first_step, logging_strategy="steps", save_strategy="steps", save_steps=args.save_steps,
        save_total_limit=args.save_total_limit, evaluation_strategy="steps" if args.do_eval else "no",
        eval_steps=(args.eval_steps or args.logging_steps) if args.do_eval else None, eval_on_start=bool(args.do_eval and not resume),
        do_train=True, do_eval=args.do_eval, bf16=precision == "bf16", fp16=precision == "fp16",
        gradient_checkpointing=bool(args.gradient_checkpointing), gradient_checkpointing_kwargs={"use_reentrant": False},
        deepspeed=ds_config, ddp_find_unused_parameters=False, ddp_timeout=args.ddp_timeout,
        dataloader_num_workers=args.dataloader_num_workers, remove_unused_columns=False, report_to="none",
        # without CUDA: train on the CPU as data-parallel ranks (gloo); without use_cpu each torchrun process
        # trains alone ("process group is initialized, but parallel_mode != ParallelMode.DISTRIBUTED")
        use_cpu=not torch.cuda.is_available(),
        save_safetensors=True, label_names=["labels"],
        prediction_loss_only=True,  # eval keeps no [batch, seq, vocab] logits
        disable_tqdm=bool(args.disable_tqdm),
    )
    targs = training_arguments(transformers, kw)

    class CllamaTrainer(Trainer):
        """Counts the tokens it trains on (for tokens_per_second, as cllama logs it: batch x padded length)."""

        tokens_seen = 0

        def training_step(self, model, inputs, *rest, **kwargs):
            self.tokens_seen += int(inputs["input_ids"].numel())
            loss = super().training_step(model, inputs, *rest, **kwargs)
            if args.log_rank_losses:
                rank = os.environ.get("RANK", "0")
                print(f"[train.py rank {rank}] step {self.state.global_step + 1} micro-batch loss {float(loss):.6f} ({inputs['input_ids'].shape[0]} records)", flush=True)
            return loss

        def _get_train_sampler(self, *a, **kw):
            return EpochOrderSampler(len(train_ds), args.seed)

    class CllamaCallback(TrainerCallback):
        """metrics.jsonl in cllama's format, and fp16 loss-scale collapse detection."""

        def __init__(self):
            self.trainer = None
            self.file = os.path.join(args.output_dir, "metrics.jsonl")
            self.last_tokens = 0
            self.last_time = time.time()
            self.collapse: str | None = None

        def on_train_begin(self, a, state, control, **kw):
            if state.is_world_process_zero:
                os.makedirs(args.output_dir, exist_ok=True)
                entries = [e for e in (cllama_entry(h, h.get("step", 0), h.get("epoch"), h.get("tokens_per_second")) for h in state.log_history) if e]
                write_lines_atomic(self.file, entries)  # a resumed run continues from its checkpoint's history
            self.last_time = time.time()

        def on_log(self, a, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" in logs and not math.isfinite(float(logs["loss"])):
                self.collapse = f"training loss is {logs['loss']} at step {state.global_step}"
                control.should_training_stop = True
            tps = None
            if "loss" in logs and self.trainer is not None:
                now = time.time()
                tps = (self.trainer.tokens_seen - self.last_tokens) * world / max(now - self.last_time, 1e-9)
                self.last_tokens, self.last_time = self.trainer.tokens_seen, now
            entry = cllama_entry(logs, state.global_step, state.epoch, tps)
            if entry and state.is_world_process_zero:
                with open(self.file, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry) + "\n")

        def on_step_end(self, a, state, control, **kw):
            if precision != "fp16" or self.trainer is None:
                return
            scale = loss_scale(self.trainer)
            if scale is not None and scale < args.min_loss_scale:
                self.collapse = f"fp16 loss scale fell to {scale:g} at step {state.global_step} (gradients overflow every step)"
                control.should_training_stop = True

    callback = CllamaCallback()
    trainer = CllamaTrainer(model=model, args=targs, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=Collator(int(meta["pad_id"])), callbacks=[callback])
    callback.trainer = trainer
    result = trainer.train(resume_from_checkpoint=resume)
    if callback.collapse:
        raise LaunchError(f"stopped: {callback.collapse}; nothing final was saved. Use --precision bf16 (or fp32), a lower --learning_rate, or resume from the last good checkpoint-N")
    metrics = dict(result.metrics)
    if args.do_eval:
        # cllama evaluates once more at the end unless the last step was an eval step (collective: every rank)
        every = args.eval_steps or args.logging_steps
        last = [h for h in trainer.state.log_history if "eval_loss" in h and h.get("step") == trainer.state.global_step]
        ev = {"eval_loss": last[-1]["eval_loss"]} if last and trainer.state.global_step % every == 0 else trainer.evaluate()
        metrics.update(ev)
        metrics["perplexity"] = math.exp(min(float(ev["eval_loss"]), 700))
    save_final(trainer, args, torch)
    if trainer.is_world_process_zero():
        trainer.save_state()  # trainer_state.json (HF format) at the top of the output dir
        trainer.save_metrics("all", metrics)
        copy_tokenizer(args.tokenizer_dir, args.output_dir)
        log(f"done: {args.output_dir}")
    return 0


def loss_scale(trainer) -> float | None:
    """The current fp16 loss scale: DeepSpeed's optimizer, or the AMP GradScaler."""
    opt = getattr(trainer.model_wrapped, "optimizer", None)
    for attr in ("cur_scale", "loss_scale"):
        v = getattr(opt, attr, None)
        if isinstance(v, (int, float)):
            return float(v)
    scaler = getattr(trainer.accelerator, "scaler", None)
    if scaler is not None and scaler.is_enabled():
        return float(scaler.get_scale())
    return None


def save_final(trainer, args, torch) -> None:
    """Gathers the weights (ZeRO-safe), refuses non-finite or empty ones, writes the final result atomically."""
    state_dict = trainer.accelerator.get_state_dict(trainer.model_wrapped if trainer.is_deepspeed_enabled else trainer.model)
    if not trainer.is_world_process_zero():
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    trainable_names = {n for n, p in model.named_parameters() if p.requires_grad}
    if args.train_kind == "lora":
        from peft import get_peft_model_state_dict

        # save_embedding_layers=False here and below: embed_tokens / lm_head travel as modules_to_save only (with a
        # resized vocabulary PEFT's "auto" would add the base layers too, and the two counts would differ)
        adapter = get_peft_model_state_dict(model, state_dict=state_dict, save_embedding_layers=False)
        n_lora = sum(1 for k in adapter if ".lora_A." in k or ".lora_B." in k)
        if n_lora == 0 or any(v.numel() == 0 for v in adapter.values()):
            raise LaunchError(f"the gathered adapter is empty ({len(adapter)} tensors, {n_lora} LoRA); not saving an empty adapter")
        to_check = adapter
    else:
        to_check = {k: v for k, v in state_dict.items() if k in trainable_names} or state_dict
    bad = [k for k, v in to_check.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise LaunchError(f"{len(bad)} trained tensors hold NaN/inf (e.g. {bad[0]}); not saving. Resume from the last good checkpoint-N with a lower --learning_rate or --precision bf16")
    staging = os.path.join(args.output_dir, f".final.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    if args.train_kind == "lora":
        # save_embedding_layers=False: embed_tokens / lm_head travel as modules_to_save, never as extra base-layer copies
        model.save_pretrained(staging, state_dict=state_dict, safe_serialization=True, save_embedding_layers=False)
        from safetensors.torch import load_file

        back = load_file(os.path.join(staging, "adapter_model.safetensors"))
        if len(back) != len(adapter):
            raise LaunchError(f"adapter_model.safetensors holds {len(back)} tensors, expected {len(adapter)}; not saving")
    else:
        import inspect

        accepted = inspect.signature(model.save_pretrained).parameters
        kw = {"safe_serialization": True} if "safe_serialization" in accepted else {}  # transformers 5: always safetensors
        model.save_pretrained(staging, state_dict=state_dict, **kw)
    for name in os.listdir(staging):
        os.replace(os.path.join(staging, name), os.path.join(args.output_dir, name))
    os.rmdir(staging)
    log(f"saved the {'adapter' if args.train_kind == 'lora' else 'model'} ({len(to_check)} checked tensors) to {args.output_dir}")


def copy_tokenizer(src: str, dest: str) -> None:
    if not os.path.isdir(src):
        return
    for name in sorted(os.listdir(src)):
        tmp = os.path.join(dest, f".{name}.tmp-{os.getpid()}")
        shutil.copyfile(os.path.join(src, name), tmp)
        os.replace(tmp, os.path.join(dest, name))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LaunchError as e:
        print(f"train.py: {e}", file=sys.stderr)
        sys.exit(1)
