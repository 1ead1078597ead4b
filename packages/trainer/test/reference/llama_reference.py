"""Independent PyTorch reference of HF LLaMA (no transformers import) for the trainer's parity fixtures.

Writes, for each config below, test-fixtures/<name>/{config.json, model.safetensors, golden.json}:
random weights, a [2, 20] batch, and the outputs the TypeScript model must reproduce — logits sums,
two logits rows, the HF causal-LM loss, and the L2 norm of d loss / d W for every weight.

Run from the repository root with Debian's Python (torch 1.13):
    /usr/bin/python3 packages/trainer/test/reference/llama_reference.py
The tests never run Python; they read the committed outputs.
"""
import json
import math
import os
import struct

import torch

torch.manual_seed(0)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../../../.."))

CONFIGS = {
    # Grouped-query attention (4 query heads share 2 key/value heads) and a large rope_theta.
    "tiny-llama-gqa": dict(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, rope_theta=500000.0,
                           rope_scaling=None, tie_word_embeddings=False, rms_norm_eps=1e-5),
    # Tied input/output embeddings, linear rope scaling (factor 4), multi-query attention (1 kv head).
    "tiny-llama-tied": dict(vocab_size=280, hidden_size=48, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=1, rope_theta=10000.0,
                            rope_scaling={"type": "linear", "factor": 4.0}, tie_word_embeddings=True,
                            rms_norm_eps=1e-6),
}


def rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_tables(seq, head_dim, theta, scaling):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    t = torch.arange(seq, dtype=torch.int64).float()
    if scaling is not None:
        t = t / scaling["factor"]
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def forward(cfg, w, ids):
    b, s = ids.shape
    h, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = h // nh
    cos, sin = rope_tables(s, hd, cfg["rope_theta"], cfg["rope_scaling"])
    mask = torch.full((s, s), torch.finfo(torch.float32).min).triu(1)
    x = w["model.embed_tokens.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        y = rms_norm(x, w[p + "input_layernorm.weight"], cfg["rms_norm_eps"])
        q = (y @ w[p + "self_attn.q_proj.weight"].T).view(b, s, nh, hd).transpose(1, 2)
        k = (y @ w[p + "self_attn.k_proj.weight"].T).view(b, s, nkv, hd).transpose(1, 2)
        v = (y @ w[p + "self_attn.v_proj.weight"].T).view(b, s, nkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        scores = (q @ k.transpose(2, 3)) / math.sqrt(hd) + mask
        attn = torch.softmax(scores, dim=-1) @ v
        attn = attn.transpose(1, 2).reshape(b, s, h)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T
        y = rms_norm(x, w[p + "post_attention_layernorm.weight"], cfg["rms_norm_eps"])
        gate = y @ w[p + "mlp.gate_proj.weight"].T
        up = y @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], cfg["rms_norm_eps"])
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def causal_lm_loss(logits, labels):
    shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1])
    shift_labels = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100)


def weight_shapes(cfg):
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    kv = h // cfg["num_attention_heads"] * cfg["num_key_value_heads"]
    shapes = {"model.embed_tokens.weight": (v, h)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        shapes.update({p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kv, h),
                       p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, h),
                       p + "mlp.gate_proj.weight": (inter, h), p + "mlp.up_proj.weight": (inter, h),
                       p + "mlp.down_proj.weight": (h, inter), p + "input_layernorm.weight": (h,),
                       p + "post_attention_layernorm.weight": (h,)})
    shapes["model.norm.weight"] = (h,)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (v, h)
    return shapes


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def main():
    for name, cfg in CONFIGS.items():
        out = os.path.join(ROOT, "test-fixtures", name)
        os.makedirs(out, exist_ok=True)
        weights = {}
        for wname, shape in weight_shapes(cfg).items():
            if len(shape) == 1:
                weights[wname] = (1.0 + 0.1 * torch.randn(shape)).requires_grad_()
            else:
                weights[wname] = (0.08 * torch.randn(shape)).requires_grad_()
        ids = torch.randint(3, cfg["vocab_size"], (2, 20))
        labels = ids.clone()
        labels[1, :4] = -100
        logits = forward(cfg, weights, ids)
        loss = causal_lm_loss(logits, labels)
        loss.backward()
        config_json = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
                       "max_position_embeddings": 128, "bos_token_id": 1, "eos_token_id": 2,
                       "torch_dtype": "float32", **cfg}
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config_json, f, indent=2)
        write_safetensors(os.path.join(out, "model.safetensors"), weights)
        golden = {
            "generator": "packages/trainer/test/reference/llama_reference.py (torch %s)" % torch.__version__,
            "input_ids": ids.tolist(), "labels": labels.tolist(),
            "logits_sum": logits.sum().item(), "logits_abs_sum": logits.abs().sum().item(),
            "logits_first_row": logits[0, 0, :16].tolist(), "logits_last_row": logits[1, -1, :16].tolist(),
            "loss": loss.item(),
            "grad_norms": {k: v.grad.norm().item() for k, v in weights.items()},
        }
        with open(os.path.join(out, "golden.json"), "w") as f:
            json.dump(golden, f, indent=1)
        print(name, "loss", loss.item())


if __name__ == "__main__":
    main()
