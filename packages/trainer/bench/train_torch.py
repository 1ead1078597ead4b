# PyTorch side of bench/train.ts: the same LLaMA (hidden 256, 4 layers, 8 heads, inter 688, vocab 49,954),
# batch 4 x seq 256, fp32, one optimizer step = forward + backward + clip_grad_norm_(1.0) + AdamW, for
# stage 1 (embed_tokens only), stage 2 (LoRA r=8 on q/k/v/o + embed_tokens/lm_head) and full training.
# Self-contained (no transformers): HF LLaMA math (RMSNorm, rotary, causal softmax attention, SwiGLU).
#   .venv-interop/bin/python packages/trainer/bench/train_torch.py [steps] [threads]   (threads: torch.set_num_threads; default torch's choice)
# The anchor is torch 2.13.0+cpu from the machine's wheels (MKL; `bash interop/venv.sh` builds .venv-interop/, or
# PYTHON=/path/to/python bench/vs-torch.sh bench); Debian's /usr/bin/python3 (torch 1.13 + OpenBLAS) is the
# historical column in docs/trainer.md.
# On a GPU (the GPU kit's anchor, bench/gpu-kit/run.sh):
#   python3 train_torch.py 3 --device cuda --config large --tf32 off --modes stage2,full [--json out.json]
#   --config bench (the above) | large (hidden 1024, 8 layers, 16 heads, inter 2752, seq 512, batch 8) | smoke
#   --tf32 off: float32 matmuls in full precision (torch.backends.cuda.matmul.allow_tf32 = False), on: TF32.
import argparse, json, sys, time, math, torch
ap = argparse.ArgumentParser()
ap.add_argument("steps", nargs="?", type=int, default=3)
ap.add_argument("threads", nargs="?", type=int, default=None)
ap.add_argument("--device", default="cpu")
ap.add_argument("--config", default="bench", choices=["bench", "large", "smoke"])
ap.add_argument("--tf32", default="off", choices=["off", "on"])
ap.add_argument("--modes", default="stage1,stage2,full")
ap.add_argument("--json", default=None)
ARGS = ap.parse_args()
torch.manual_seed(0)
CONFIGS = {"bench": (256, 4, 8, 688, 49954, 4, 256), "large": (1024, 8, 16, 2752, 49954, 8, 512), "smoke": (32, 2, 4, 86, 512, 2, 32)}
H, L, NH, I, V, B, T = CONFIGS[ARGS.config]
HD = H // NH
STEPS = ARGS.steps
DEV = torch.device(ARGS.device)
if ARGS.threads:
    torch.set_num_threads(ARGS.threads)
if DEV.type == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = ARGS.tf32 == "on"
    torch.backends.cudnn.allow_tf32 = ARGS.tf32 == "on"

def p(*shape, std=0.02):
    return torch.nn.Parameter((torch.randn(*shape) * std).to(DEV))

def ones(n):
    return torch.nn.Parameter(torch.ones(n, device=DEV))

W = {"embed": p(V, H), "lm_head": p(V, H), "norm": ones(H)}
for l in range(L):
    for n, s in [("q", (H, H)), ("k", (H, H)), ("v", (H, H)), ("o", (H, H)), ("gate", (I, H)), ("up", (I, H)), ("down", (H, I))]:
        W[f"{l}.{n}"] = p(*s)
    W[f"{l}.in_norm"] = ones(H)
    W[f"{l}.post_norm"] = ones(H)

inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
freqs = torch.outer(torch.arange(T).float(), inv)
emb = torch.cat((freqs, freqs), -1)
COS, SIN = emb.cos().to(DEV), emb.sin().to(DEV)
MASK = torch.full((T, T), torch.finfo(torch.float32).min).triu(1).to(DEV)

def rms(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))

def rot(x):
    return torch.cat((-x[..., HD // 2:], x[..., :HD // 2]), -1)

LORA = {}
def lin(x, name):
    y = x @ W[name].t()
    if name in LORA:
        a, b = LORA[name]
        y = y + (torch.nn.functional.dropout(x, 0.05, training=True) @ a.t() @ b.t()) * (32 / 8)
    return y

def loss_fn(ids):
    x = W["embed"][ids]
    for l in range(L):
        h = rms(x, W[f"{l}.in_norm"])
        q = lin(h, f"{l}.q").view(B, T, NH, HD).transpose(1, 2)
        k = lin(h, f"{l}.k").view(B, T, NH, HD).transpose(1, 2)
        v = lin(h, f"{l}.v").view(B, T, NH, HD).transpose(1, 2)
        q, k = q * COS + rot(q) * SIN, k * COS + rot(k) * SIN
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HD) + MASK, -1)
        x = x + lin((att @ v).transpose(1, 2).reshape(B, T, H), f"{l}.o")
        h = rms(x, W[f"{l}.post_norm"])
        x = x + lin(torch.nn.functional.silu(lin(h, f"{l}.gate")) * lin(h, f"{l}.up"), f"{l}.down")
    logits = rms(x, W["norm"]) @ W["lm_head"].t()
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))

def run(mode):
    LORA.clear()
    for w in W.values():
        w.requires_grad_(mode == "full")
    if mode == "stage1":
        params = [W["embed"]]
    elif mode == "stage2":
        for l in range(L):
            for n in ("q", "k", "v", "o"):
                a = torch.nn.Parameter(torch.empty(8, H).uniform_(-1 / math.sqrt(H), 1 / math.sqrt(H)).to(DEV))
                LORA[f"{l}.{n}"] = (a, torch.nn.Parameter(torch.zeros(H, 8, device=DEV)))
        params = [t for pair in LORA.values() for t in pair] + [W["embed"], W["lm_head"]]
    else:
        params = list(W.values())
    for t in params:
        t.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    times = []
    if DEV.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for s in range(STEPS + 1):
        ids = torch.randint(0, V, (B, T)).to(DEV)
        t0 = time.perf_counter()
        loss = loss_fn(ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if DEV.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    tps = B * T * STEPS / sum(times[1:])
    peak = torch.cuda.max_memory_allocated() if DEV.type == "cuda" else 0
    print(f"{mode:7s} {tps:7.0f} tok/s  (step seconds: {', '.join(f'{t:.3f}' for t in times)})" + (f"  peak {peak / 2**30:.2f} GiB" if peak else ""), flush=True)
    print("RESULT " + json.dumps({"command": "torch", "config": ARGS.config, "mode": mode, "device": str(DEV), "tf32": ARGS.tf32, "tokensPerSecond": tps, "stepSeconds": times, "peakBytes": peak}), flush=True)
    return tps

name = torch.cuda.get_device_name(DEV) if DEV.type == "cuda" else f"cpu, threads {torch.get_num_threads()}"
print(f"torch {torch.__version__}, {name}, config {ARGS.config}, batch {B} x seq {T}, tf32 {ARGS.tf32 if DEV.type == 'cuda' else 'n/a'}")
for mode in ARGS.modes.split(","):
    run(mode)
