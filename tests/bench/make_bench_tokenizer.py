#!/usr/bin/env python3
"""Widens a byte-level BPE tokenizer folder to a model's vocabulary, for serving benchmarks.

A `--load-format dummy` preset (configs/models/*) has no tokenizer, and a small one leaves most
of a 128K vocabulary without text: random weights then sample ids that decode to nothing, and a
load test sees no tokens stream. This copies SRC's tokenizer (tokenizer.json, tokenizer_config.json,
chat_template.jinja) to OUT with new ordinary tokens, each the concatenation of two existing
ASCII-letter tokens plus the merge that makes it, until VOCAB - (number of added tokens) ordinary
tokens exist; the added (special) tokens move to the top ids, as in Llama 3 (<|begin_of_text|> =
128000 for a 128,256 vocabulary). Every id then decodes to ASCII text. Standard library only.

usage: make_bench_tokenizer.py SRC_DIR OUT_DIR --vocab 128256
"""
import argparse
import json
import os
import random
import shutil
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src")
    parser.add_argument("out")
    parser.add_argument("--vocab", type=int, required=True, help="the model's vocab_size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with open(os.path.join(args.src, "tokenizer.json")) as f:
        tok = json.load(f)
    model = tok["model"]
    if model.get("type") != "BPE":
        sys.exit(f"{args.src}: not a BPE tokenizer")
    vocab, merges, added = model["vocab"], model["merges"], tok.get("added_tokens", [])
    ordinary = args.vocab - len(added)
    if ordinary < len(vocab):
        sys.exit(f"--vocab {args.vocab} is smaller than {args.src}'s {len(vocab) + len(added)} tokens")
    rng = random.Random(args.seed)
    # 'Ġ' is the byte-level form of a space: words with and without a leading space.
    pool = [t for t in vocab if t.lstrip("Ġ").isascii() and t.lstrip("Ġ").isalpha()]
    letters = [t for t in pool if not t.startswith("Ġ")]
    next_id = len(vocab)
    while next_id < ordinary:
        left, right = rng.choice(pool), rng.choice(letters)
        new = left + right
        if new in vocab or len(new) > 12:
            continue
        vocab[new] = next_id
        next_id += 1
        merges.append([left, right] if isinstance(merges[0], list) else f"{left} {right}")
        pool.append(new)
    moved = {}
    for i, entry in enumerate(added):
        moved[entry["id"]] = ordinary + i
        entry["id"] = ordinary + i
    for special in (tok.get("post_processor") or {}).get("special_tokens", {}).values():
        special["ids"] = [moved.get(i, i) for i in special["ids"]]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tokenizer.json"), "w") as f:
        json.dump(tok, f, ensure_ascii=False)
    for name in ("tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if os.path.exists(os.path.join(args.src, name)):
            shutil.copy(os.path.join(args.src, name), os.path.join(args.out, name))
    print(f"{args.out}: {ordinary} ordinary tokens ({len(merges)} merges) + {len(added)} added = {args.vocab}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
