#!/usr/bin/env python3
"""
GPU-side checks of the emitted launch folders (run by run.sh after the two torchrun runs):

  1. loss falls: eval loss in <out>/{stage2,sft}/metrics.jsonl (train.py's cllama-format log), last < first;
     the output folders have cllama's layout (adapter + tokenizer + metrics + trainer_state + checkpoint-N)
  2. PyTorch scores the two GPU-trained adapters (stage1 + adapter, float32, CPU) on upload/score_ids.json;
     the losses go to results.json and compare.ts scores the same adapters with cllama-train (wasm)
  3. reverse: our files in real transformers + peft (CPU, float32, eager attention):
     AutoTokenizer slow and fast on upload/tokenizer give our ids exactly (expected.json);
     AutoModelForCausalLM(stage1) + PeftModel.from_pretrained(ts-sft) and AutoModelForCausalLM(merged)
     give our logits (logits_*.bin) within 1e-4 and our loss within 1e-4 relative.
Writes <out>/results.json; exit 1 when any check fails.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--upload", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import accelerate
    import peft
    import transformers
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    results = {"versions": {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "accelerate": accelerate.__version__}, "checks": []}
    failed = []

    def check(name, ok, **info):
        results["checks"].append({"name": name, "ok": bool(ok), **info})
        print(f"{'PASS' if ok else 'FAIL'}  {name}  {json.dumps(info)}", flush=True)
        if not ok:
            failed.append(name)

    dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"

    def load(model_dir):
        return AutoModelForCausalLM.from_pretrained(model_dir, **{dtype_kw: torch.float32}, attn_implementation="eager").eval()

    # 1. loss falls + layout
    for run in ("stage2", "sft"):
        d = os.path.join(a.out, run)
        metrics_file = os.path.join(d, "metrics.jsonl")
        if not os.path.exists(metrics_file):
            check(f"{run}: trained", False, why=f"no {metrics_file}")
            continue
        entries = [json.loads(line) for line in open(metrics_file, encoding="utf-8") if line.strip()]
        evals = [e for e in entries if "eval_loss" in e]
        train = [e for e in entries if "loss" in e]
        check(f"{run}: eval loss falls", len(evals) >= 2 and evals[-1]["eval_loss"] < evals[0]["eval_loss"],
              eval_losses=[(e["step"], e["eval_loss"]) for e in evals], train_losses=[(e["step"], e["loss"]) for e in train])
        names = set(os.listdir(d))
        need = {"adapter_model.safetensors", "adapter_config.json", "tokenizer.model", "metrics.jsonl", "trainer_state.json", "all_results.json"}
        check(f"{run}: output layout", need <= names and any(n.startswith("checkpoint-") for n in names), missing=sorted(need - names), files=sorted(names))
        keys = set(k for e in entries for k in e)
        check(f"{run}: metrics keys are cllama's", keys <= {"step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_per_second", "eval_loss", "eval_perplexity"}, keys=sorted(keys))

    # 2. PyTorch loss of the GPU-trained adapters on fixed ids (compare.ts runs cllama-train score on the same)
    ids = torch.tensor(json.load(open(os.path.join(a.upload, "score_ids.json"))), dtype=torch.long)
    results["score"] = {}
    for run in ("stage2", "sft"):
        adapter = os.path.join(a.out, run)
        if not os.path.exists(os.path.join(adapter, "adapter_model.safetensors")):
            continue
        model = PeftModel.from_pretrained(load(os.path.join(a.upload, "stage1")), adapter).eval()
        with torch.no_grad():
            loss = float(model(input_ids=ids, labels=ids).loss)
        results["score"][run] = {"adapter": run, "pytorch_loss": loss}
        check(f"{run}: PyTorch loss of the written adapter is finite", math.isfinite(loss), pytorch_loss=loss)

    # 3. reverse check: tokenizers
    exp = json.load(open(os.path.join(a.upload, "expected.json"), encoding="utf-8"))
    for fast in (False, True):
        kind = "fast" if fast else "slow"
        try:
            tok = AutoTokenizer.from_pretrained(os.path.join(a.upload, "tokenizer"), use_fast=fast)
        except Exception as e:  # a missing sentencepiece / tokenizers backend is a failure to report, not a crash
            check(f"tokenizer ({kind}) loads", False, error=f"{type(e).__name__}: {e}")
            continue
        bad = [(line, tok(line).input_ids, want) for line, want in zip(exp["lines"], exp["ids"]) if tok(line).input_ids != want]
        check(f"tokenizer ({kind}, {type(tok).__name__}) gives our ids", not bad, lines=len(exp["lines"]), mismatches=len(bad), first=bad[:2])

    # 3. reverse check: logits
    logit_ids = torch.tensor(exp["logit_ids"], dtype=torch.long)
    for key, build in (("peft", lambda: PeftModel.from_pretrained(load(os.path.join(a.upload, "stage1")), os.path.join(a.upload, "ts-sft")).eval()),
                       ("merged", lambda: load(os.path.join(a.upload, "merged")))):
        e = exp[key]
        want = np.fromfile(os.path.join(a.upload, e["file"]), dtype="<f4").reshape(e["shape"])
        model = build()
        with torch.no_grad():
            out = model(input_ids=logit_ids, labels=logit_ids)
        got = out.logits.float().numpy()
        diff = float(np.max(np.abs(got - want)))
        rel = abs(float(out.loss) - e["loss"]) / abs(e["loss"])
        check(f"{key}: transformers/peft logits = ours", got.shape == want.shape and diff <= exp["tolerance"]["logits_abs"], max_abs_diff=diff, max_abs_logit=float(np.max(np.abs(want))))
        check(f"{key}: transformers/peft loss = ours", rel <= exp["tolerance"]["loss_rel"], pytorch_loss=float(out.loss), ours=e["loss"], rel_err=rel)

    results["failed"] = failed
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"{len(results['checks']) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
