#!/usr/bin/python3
"""A reference forward pass for Llama-family Hugging Face model directories, in numpy float64.

Written from Hugging Face transformers' modeling_llama / modeling_mistral / modeling_qwen2 /
modeling_qwen3 (v4.4x), not from hearth's C++: the test of hearth's forward pass compares against
it. Covers RMSNorm, rotary embeddings (rotate_half convention, llama3 rope scaling), grouped-query
attention, causal (and Mistral's sliding-window) attention, the SiLU-gated MLP, Qwen2's q/k/v
biases, Llama/Qwen3 attention_bias (q/k/v/o), Qwen3's per-head q/k RMS norms, tied or untied
lm_head. Weights in F32, BF16 or F16 are widened exactly to float64.

  llama_ref.py DIR --ids 1,2,3 [--ids 4,5] [--last-only] --out logits.json
      {"logits": [sequence][position][vocab]}; with --last-only, each sequence's last position
      only (its list then holds one row).
  llama_ref.py DIR --score --prompt 1,2,3 --labels 4,5 --labels 6 [--out scores.json]
      prints {"scores": [...]}: for each label, the sum over its tokens of log p(token | prompt and
      the label's tokens before it): the classify score.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np


# --- safetensors -----------------------------------------------------------------------------

def read_safetensors(path):
    """{name: float64 array} of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    region = memoryview(data)[8 + n:]
    tensors = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        raw = region[begin:end]
        if t["dtype"] == "F32":
            a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif t["dtype"] == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif t["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = bits.view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"{path}: {name}: dtype {t['dtype']}")
        tensors[name] = a.reshape(t["shape"])
    return tensors


def read_weights(directory):
    index = os.path.join(directory, "model.safetensors.index.json")
    single = os.path.join(directory, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(index) as f:
        files = sorted(set(json.load(f)["weight_map"].values()))
    weights = {}
    for name in files:
        weights.update(read_safetensors(os.path.join(directory, name)))
    return weights


# --- the model ---------------------------------------------------------------------------------

class Model:
    def __init__(self, directory):
        with open(os.path.join(directory, "config.json")) as f:
            c = json.load(f)
        self.arch = c["architectures"][0]
        assert self.arch in ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                             "Qwen3ForCausalLM"), self.arch
        assert c.get("hidden_act", "silu") == "silu"
        self.layers = c["num_hidden_layers"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads") or self.heads
        default_head_dim = 128 if self.arch == "Qwen3ForCausalLM" else c["hidden_size"] // self.heads
        self.head_dim = c.get("head_dim") or default_head_dim
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.theta = c.get("rope_theta", 10000.0)
        self.rope_scaling = c.get("rope_scaling")
        self.tied = c.get("tie_word_embeddings", False)
        self.sliding_window = c.get("sliding_window") if self.arch == "MistralForCausalLM" else None
        attention_bias = c.get("attention_bias", False)
        # Qwen2: q/k/v always biased, o never; Llama and Qwen3: attention_bias on all four.
        self.qkv_bias = self.arch == "Qwen2ForCausalLM" or (
            attention_bias and self.arch in ("LlamaForCausalLM", "Qwen3ForCausalLM"))
        self.o_bias = attention_bias and self.arch in ("LlamaForCausalLM", "Qwen3ForCausalLM")
        self.qk_norm = self.arch == "Qwen3ForCausalLM"
        self.w = read_weights(directory)
        self.inv_freq = self.rope_frequencies()

    def rope_frequencies(self):
        d = self.head_dim
        inv_freq = 1.0 / (self.theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
        s = self.rope_scaling
        if not s:
            return inv_freq
        kind = s.get("rope_type", s.get("type"))
        if kind == "default":
            return inv_freq
        assert kind == "llama3", kind
        factor = s["factor"]
        low, high = s["low_freq_factor"], s["high_freq_factor"]
        old_context = s["original_max_position_embeddings"]
        low_freq_wavelen = old_context / low
        high_freq_wavelen = old_context / high
        wavelen = 2 * math.pi / inv_freq
        # Long wavelengths slowed by `factor`, short ones kept, the band between blended.
        scaled = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_context / wavelen - low) / (high - low)
        blended = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
        return np.where(medium, blended, scaled)

    def rms_norm(self, x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def linear(self, x, name, bias=False):
        y = x @ self.w[name + ".weight"].T
        return y + self.w[name + ".bias"] if bias else y

    def rotate(self, x, positions):
        # x: [heads, seq, head_dim]; rotate_half pairs element i with i + head_dim / 2.
        freqs = np.outer(positions, self.inv_freq)
        emb = np.concatenate([freqs, freqs], axis=-1)
        cos, sin = np.cos(emb), np.sin(emb)
        half = x.shape[-1] // 2
        rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
        return x * cos + rotated * sin

    def attention(self, x, p):
        n = x.shape[0]
        q = self.linear(x, p + "q_proj", self.qkv_bias).reshape(n, self.heads, self.head_dim)
        k = self.linear(x, p + "k_proj", self.qkv_bias).reshape(n, self.kv_heads, self.head_dim)
        v = self.linear(x, p + "v_proj", self.qkv_bias).reshape(n, self.kv_heads, self.head_dim)
        if self.qk_norm:
            q = self.rms_norm(q, self.w[p + "q_norm.weight"])
            k = self.rms_norm(k, self.w[p + "k_norm.weight"])
        q, k, v = (t.transpose(1, 0, 2) for t in (q, k, v))  # [heads, seq, head_dim]
        positions = np.arange(n, dtype=np.float64)
        q, k = self.rotate(q, positions), self.rotate(k, positions)
        group = self.heads // self.kv_heads  # query head h reads kv head h // group
        k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(self.head_dim)
        i, j = np.arange(n)[:, None], np.arange(n)[None, :]
        allowed = j <= i
        if self.sliding_window:
            allowed &= i - j < self.sliding_window
        scores = np.where(allowed, scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        out = (probs @ v).transpose(1, 0, 2).reshape(n, self.heads * self.head_dim)
        return self.linear(out, p + "o_proj", self.o_bias)

    def mlp(self, x, p):
        gate = self.linear(x, p + "gate_proj")
        silu = gate / (1 + np.exp(-gate))
        return self.linear(silu * self.linear(x, p + "up_proj"), p + "down_proj")

    def logits(self, ids):
        """[len(ids), vocab] float64 logits."""
        h = self.w["model.embed_tokens.weight"][np.asarray(ids)]
        for layer in range(self.layers):
            p = f"model.layers.{layer}."
            h = h + self.attention(self.rms_norm(h, self.w[p + "input_layernorm.weight"]),
                                   p + "self_attn.")
            h = h + self.mlp(self.rms_norm(h, self.w[p + "post_attention_layernorm.weight"]),
                             p + "mlp.")
        h = self.rms_norm(h, self.w["model.norm.weight"])
        head = self.w["model.embed_tokens.weight" if self.tied else "lm_head.weight"]
        return h @ head.T

    def score(self, prompt, label):
        """Sum of log p(label[k] | prompt + label[:k])."""
        logits = self.logits(list(prompt) + list(label))
        total = 0.0
        for k, token in enumerate(label):
            row = logits[len(prompt) + k - 1]
            top = row.max()
            total += row[token] - (top + math.log(np.exp(row - top).sum()))
        return total


def parse_ids(text):
    return [int(t) for t in text.split(",") if t != ""]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("directory")
    ap.add_argument("--ids", action="append", default=[], help="token ids, comma-separated")
    ap.add_argument("--last-only", action="store_true", help="only each sequence's last logits")
    ap.add_argument("--score", action="store_true", help="score --labels after --prompt")
    ap.add_argument("--prompt", default="")
    ap.add_argument("--labels", action="append", default=[])
    ap.add_argument("--out", help="where the JSON goes (default: stdout)")
    args = ap.parse_args()
    model = Model(args.directory)
    if args.score:
        prompt = parse_ids(args.prompt)
        if not prompt or not args.labels:
            ap.error("--score needs --prompt and at least one --labels")
        result = {"scores": [model.score(prompt, parse_ids(label)) for label in args.labels]}
    else:
        if not args.ids:
            ap.error("give --ids")
        logits = []
        for text in args.ids:
            rows = model.logits(parse_ids(text))
            logits.append((rows[-1:] if args.last_only else rows).tolist())
        result = {"logits": logits}
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
