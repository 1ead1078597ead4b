# PyTorch side of bench/train.ts: the same LLaMA (hidden 256, 4 layers, 8 heads, inter 688, vocab 49,954),
# batch 4 x seq 256, fp32, one optimizer step = forward + backward + clip_grad_norm_(1.0) + AdamW, for
# stage 1 (embed_tokens only), stage 2 (LoRA r=8 on q/k/v/o + embed_tokens/lm_head) and full training.
# Self-contained (no transformers): HF LLaMA math (RMSNorm, rotary, causal softmax attention, SwiGLU).
#   /usr/bin/python3 packages/trainer/bench/train_torch.py [steps] [threads]   (threads: torch.set_num_threads; default torch's choice)
import sys, time, math, torch
torch.manual_seed(0)
H, L, NH, I, V, B, T = 256, 4, 8, 688, 49954, 4, 256
HD = H // NH
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
if len(sys.argv) > 2:
    torch.set_num_threads(int(sys.argv[2]))

def p(*shape, std=0.02):
    return torch.nn.Parameter(torch.randn(*shape) * std)

W = {"embed": p(V, H), "lm_head": p(V, H), "norm": torch.nn.Parameter(torch.ones(H))}
for l in range(L):
    for n, s in [("q", (H, H)), ("k", (H, H)), ("v", (H, H)), ("o", (H, H)), ("gate", (I, H)), ("up", (I, H)), ("down", (H, I))]:
        W[f"{l}.{n}"] = p(*s)
    W[f"{l}.in_norm"] = torch.nn.Parameter(torch.ones(H))
    W[f"{l}.post_norm"] = torch.nn.Parameter(torch.ones(H))

inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
freqs = torch.outer(torch.arange(T).float(), inv)
emb = torch.cat((freqs, freqs), -1)
COS, SIN = emb.cos(), emb.sin()
MASK = torch.full((T, T), torch.finfo(torch.float32).min).triu(1)

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
                a = torch.nn.Parameter(torch.empty(8, H).uniform_(-1 / math.sqrt(H), 1 / math.sqrt(H)))
                LORA[f"{l}.{n}"] = (a, torch.nn.Parameter(torch.zeros(H, 8)))
        params = [t for pair in LORA.values() for t in pair] + [W["embed"], W["lm_head"]]
    else:
        params = list(W.values())
    for t in params:
        t.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    times = []
    for s in range(STEPS + 1):
        ids = torch.randint(0, V, (B, T))
        t0 = time.perf_counter()
        loss = loss_fn(ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    tps = B * T * STEPS / sum(times[1:])
    print(f"{mode:7s} {tps:7.0f} tok/s  (step seconds: {', '.join(f'{t:.2f}' for t in times)})", flush=True)
    return tps

print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {B} x seq {T}")
for mode in ("stage1", "stage2", "full"):
    run(mode)
