# Writes test-fixtures/train/torch_optim.json: a few torch.optim.AdamW steps and clip_grad_norm_ calls
# on small random tensors, so the TS AdamW / clipping can be checked against torch itself.
# Run with Debian's python (has torch): /usr/bin/python3 packages/trainer/bench/train_make_torch_fixture.py
import json, torch
torch.manual_seed(0)
a = torch.randn(3, 5); b = torch.randn(7)
pa = torch.nn.Parameter(a.clone()); pb = torch.nn.Parameter(b.clone())
opt = torch.optim.AdamW([{"params": [pa], "weight_decay": 0.1}, {"params": [pb], "weight_decay": 0.0}], lr=1.0, betas=(0.9, 0.98), eps=1e-6)
lrs = [0.05, 0.02, 0.01, 0.003]
grads, after = [], []
for lr in lrs:
    ga = torch.randn(3, 5) * 3; gb = torch.randn(7) * 0.01
    grads.append({"a": ga.flatten().tolist(), "b": gb.flatten().tolist()})
    for g in opt.param_groups: g["lr"] = lr
    pa.grad = ga.clone(); pb.grad = gb.clone()
    opt.step()
    after.append({"a": pa.detach().flatten().tolist(), "b": pb.detach().flatten().tolist()})
# clipping
ca = torch.nn.Parameter(torch.zeros(4, 4)); cb = torch.nn.Parameter(torch.zeros(9))
ca.grad = torch.randn(4, 4); cb.grad = torch.randn(9)
ga0, gb0 = ca.grad.clone(), cb.grad.clone()
norm = torch.nn.utils.clip_grad_norm_([ca, cb], 1.0)
json.dump({
  "adamw": {"betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": {"a": 0.1, "b": 0.0}, "lrs": lrs,
            "init": {"a": a.flatten().tolist(), "b": b.flatten().tolist()}, "shapes": {"a": [3, 5], "b": [7]},
            "grads": grads, "after": after},
  "clip": {"max_norm": 1.0, "grads": {"a": ga0.flatten().tolist(), "b": gb0.flatten().tolist()},
           "norm": norm.item(), "clipped": {"a": ca.grad.flatten().tolist(), "b": cb.grad.flatten().tolist()}},
  "torch_version": torch.__version__,
}, open("test-fixtures/train/torch_optim.json", "w"))
