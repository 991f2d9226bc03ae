#!/usr/bin/env python3
"""Writes a tiny random-weight Llama checkpoint with a byte-level BPE tokenizer and a ChatML chat
template, using only the Python standard library. The end-to-end server tests use it when the
golden checkpoints (tests/golden/models, made by scripts/make_golden.py with transformers) are
not there; its outputs are meaningless text, but every shape, file and token path is real.

    python3 scripts/e2e/make_tiny_model.py OUT_DIR [--max-position-embeddings 512]
"""

import argparse
import array
import collections
import json
import math
import os
import random
import struct

SEED = 20251123
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
CORPUS = """The quick brown fox jumps over the lazy dog. A server batches requests and streams tokens
back to every client while the cache keeps the blocks that two requests share. Hello world, this is
a tiny model for testing the HTTP front end of strata: completions, chat, streaming, errors.
Once upon a time there was a small language model that answered every question with random words.
"""


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map (as in tokenizers' ByteLevel)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def train_bpe(corpus, num_merges):
    b2u = bytes_to_unicode()
    words = collections.Counter()
    for i, w in enumerate(corpus.split()):
        words[(" " + w) if i else w] += 1
    seqs = {w: [b2u[b] for b in w.encode("utf-8")] for w in words}
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for w, n in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), count = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if count < 2:
            break
        merges.append((a, b))
        for w in seqs:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    vocab = {}
    for ch in bytes_to_unicode().values():
        vocab[ch] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    return vocab, merges


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, (shape, values) in tensors.items():
        data = array.array("f", values).tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--max-position-embeddings", type=int, default=512)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(SEED)

    vocab, merges = train_bpe(CORPUS, 120)
    added = []
    for s in SPECIALS:
        added.append({"id": len(vocab), "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
        vocab[s] = len(vocab)
    vocab_size = len(vocab)
    ids = {s: vocab[s] for s in SPECIALS}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": byte_level, "post_processor": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    with open(os.path.join(args.out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                   "add_bos_token": False, "chat_template": CHATML_TEMPLATE,
                   "tokenizer_class": "PreTrainedTokenizerFast"}, f, ensure_ascii=False)

    hidden, inter, layers, heads, kv_heads, head_dim = 64, 128, 2, 4, 2, 16
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab_size,
              "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
              "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": head_dim,
              "max_position_embeddings": args.max_position_embeddings, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
              "bos_token_id": None, "eos_token_id": ids["<|im_end|>"], "hidden_act": "silu"}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]]}, f)

    def randn(rows, cols, scale):
        return [rows, cols], [rng.gauss(0.0, scale) for _ in range(rows * cols)]

    tensors = {"model.embed_tokens.weight": randn(vocab_size, hidden, 1.0)}
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors[p + "input_layernorm.weight"] = ([hidden], [1.0] * hidden)
        tensors[p + "post_attention_layernorm.weight"] = ([hidden], [1.0] * hidden)
        tensors[p + "self_attn.q_proj.weight"] = randn(heads * head_dim, hidden, 1 / math.sqrt(hidden))
        tensors[p + "self_attn.k_proj.weight"] = randn(kv_heads * head_dim, hidden, 1 / math.sqrt(hidden))
        tensors[p + "self_attn.v_proj.weight"] = randn(kv_heads * head_dim, hidden, 1 / math.sqrt(hidden))
        tensors[p + "self_attn.o_proj.weight"] = randn(hidden, heads * head_dim, 1 / math.sqrt(hidden))
        tensors[p + "mlp.gate_proj.weight"] = randn(inter, hidden, 1 / math.sqrt(hidden))
        tensors[p + "mlp.up_proj.weight"] = randn(inter, hidden, 1 / math.sqrt(hidden))
        tensors[p + "mlp.down_proj.weight"] = randn(hidden, inter, 1 / math.sqrt(inter))
    tensors["model.norm.weight"] = ([hidden], [1.0] * hidden)
    tensors["lm_head.weight"] = randn(vocab_size, hidden, 3 / math.sqrt(hidden))
    write_safetensors(os.path.join(args.out, "model.safetensors"), tensors)
    print(f"wrote {args.out}: vocab {vocab_size}, {len(merges)} merges")


if __name__ == "__main__":
    main()
