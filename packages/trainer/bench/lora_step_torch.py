# PyTorch side of bench/lora-step.ts: one LoRA training step (r 8 on the 7 projections, dropout 0.05,
# fp32, batch 1, plain eager code: forward + backward + clip_grad_norm_(1.0) + AdamW on the LoRA weights)
# of a real model shape with random weights, and the process's peak RSS.
#   .venv-interop/bin/python packages/trainer/bench/lora_step_torch.py smollm|tinyllama [seq] [steps] [threads] [--ckpt] [--settings=lora|stage2|sft]
# --ckpt: torch.utils.checkpoint around each decoder layer (non-reentrant, as HF's gradient_checkpointing);
# --settings (as bench/lora-step.ts): lora = r 8 on the 7 projections; stage2 = q/k/v/o + embed_tokens and
# lm_head trained fully; sft = the 7 projections + embed_tokens and lm_head.
# The anchor is torch 2.13.0+cpu from the machine's wheels (MKL; `bash interop/venv.sh`). Debian's torch 1.13 (the
# historical column) needs OpenBLAS (libopenblas0-pthread): with the reference libblas3 a GEMM runs at ~3 GFLOP/s.
import sys, time, math, resource, torch, torch.utils.checkpoint
CKPT = "--ckpt" in sys.argv
SETTINGS = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--settings=")), "lora")
assert SETTINGS in ("lora", "stage2", "sft"), SETTINGS
sys.argv = [a for a in sys.argv if not a.startswith("--")]
SHAPES = {  # hidden, layers, heads, kv heads, inter, vocab
    "smollm": (576, 30, 9, 3, 1536, 49152),
    "tinyllama": (2048, 22, 32, 4, 5632, 32000),
}
H, L, NH, KV, I, V = SHAPES[sys.argv[1]]
T = int(sys.argv[2]) if len(sys.argv) > 2 else 512
STEPS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
if len(sys.argv) > 4:
    torch.set_num_threads(int(sys.argv[4]))
B, HD = 1, H // NH
torch.manual_seed(0)
with torch.no_grad():
    W = {"embed": torch.randn(V, H) * 0.02, "lm_head": torch.randn(V, H) * 0.02, "norm": torch.ones(H)}
    for l in range(L):
        for n, s in [("q", (H, H)), ("k", (KV * HD, H)), ("v", (KV * HD, H)), ("o", (H, H)), ("gate", (I, H)), ("up", (I, H)), ("down", (H, I))]:
            W[f"{l}.{n}"] = torch.randn(*s) * 0.02
        W[f"{l}.in_norm"] = torch.ones(H)
        W[f"{l}.post_norm"] = torch.ones(H)
LORA = {}
for l in range(L):
    for n in ("q", "k", "v", "o") if SETTINGS == "stage2" else ("q", "k", "v", "o", "gate", "up", "down"):
        out, inp = W[f"{l}.{n}"].shape
        LORA[f"{l}.{n}"] = (torch.nn.Parameter(torch.empty(8, inp).uniform_(-1 / math.sqrt(inp), 1 / math.sqrt(inp))), torch.nn.Parameter(torch.zeros(out, 8)))
params = [t for pair in LORA.values() for t in pair]
if SETTINGS != "lora":
    for name in ("embed", "lm_head"):
        W[name] = torch.nn.Parameter(W[name])
        params.append(W[name])

inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
emb = torch.cat((torch.outer(torch.arange(T).float(), inv),) * 2, -1)
COS, SIN = emb.cos(), emb.sin()
MASK = torch.full((T, T), torch.finfo(torch.float32).min).triu(1)

def rms(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))

def rot(x):
    return torch.cat((-x[..., HD // 2:], x[..., :HD // 2]), -1)

def lin(x, name):
    y = x @ W[name].t()
    if name in LORA:
        a, b = LORA[name]
        y = y + (torch.nn.functional.dropout(x, 0.05, training=True) @ a.t() @ b.t()) * (16 / 8)
    return y

def layer(x, l):
    h = rms(x, W[f"{l}.in_norm"])
    q = lin(h, f"{l}.q").view(B, T, NH, HD).transpose(1, 2)
    k = lin(h, f"{l}.k").view(B, T, KV, HD).transpose(1, 2).repeat_interleave(NH // KV, 1)
    v = lin(h, f"{l}.v").view(B, T, KV, HD).transpose(1, 2).repeat_interleave(NH // KV, 1)
    q, k = q * COS + rot(q) * SIN, k * COS + rot(k) * SIN
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HD) + MASK, -1)
    x = x + lin((att @ v).transpose(1, 2).reshape(B, T, H), f"{l}.o")
    h = rms(x, W[f"{l}.post_norm"])
    return x + lin(torch.nn.functional.silu(lin(h, f"{l}.gate")) * lin(h, f"{l}.up"), f"{l}.down")

def loss_fn(ids):
    x = W["embed"][ids]
    for l in range(L):
        x = torch.utils.checkpoint.checkpoint(layer, x, l, use_reentrant=False) if CKPT else layer(x, l)
    logits = rms(x, W["norm"]) @ W["lm_head"].t()
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))

opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
times = []
for s in range(STEPS):
    ids = torch.randint(0, V, (B, T))
    t0 = time.perf_counter()
    loss = loss_fn(ids)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    times.append(time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
best = min(times[1:] or times)
print(f"torch {torch.__version__} threads {torch.get_num_threads()} {sys.argv[1]}{' ' + SETTINGS}{' ckpt' if CKPT else ''} seq {T}: step seconds {', '.join(f'{t:.2f}' for t in times)}; {B * T / best:.0f} tok/s; peak RSS {peak / 1e9:.2f} GB; loss {loss.item():.4f}", flush=True)
