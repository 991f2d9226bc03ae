#!/usr/bin/env python3
"""strata's prefill attention on a checkpoint's own attention inputs, against transformers' sdpa.

Runs the sequences of transformers_logits.py through transformers in bf16 (sdpa attention),
captures every layer's query, key and value (after RoPE) and attention output, runs
strata_attention_io on the same q, k, v, and prints per layer how many (token, head) rows are
bitwise identical, and the differing ones. Where strata's whole-model logits drift from
transformers', this tells whether the attention kernel is where the first difference enters.
Several builds of strata_attention_io (variants of a rounding choice) are each held against the
same reference. --dump DIR keeps each (sequence, layer)'s input file (strata_attention_io's
format, named s{sequence}_l{layer}_{L}_{heads}_{kv_heads}_{head_dim}.in.bin) for
strata_mma_probe, and transformers' output beside it (.ref.bin, bf16 [L, heads, head_dim]).

usage: attention_on_model.py [--dump DIR] MODEL_DIR STRATA_ATTENTION_IO...
"""
import os
import sys
import tempfile

import torch
import transformers
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers_logits import test_sequences

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from attention_vs_flash import dump_option, strata_attention, write_attention_input, write_bf16  # noqa: E402



def main():
    dump, args = dump_option(sys.argv[1:])
    if len(args) < 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    model_dir, binaries = args[0], args[1:]
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
    sequences = test_sequences(model.config)
    captured = []
    sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]

    def capture(module, query, key, value, attention_mask, **kwargs):
        out, weights = sdpa(module, query, key, value, attention_mask, **kwargs)
        captured.append((module.layer_idx, query[0].transpose(0, 1).contiguous(), key[0].transpose(0, 1).contiguous(),
                         value[0].transpose(0, 1).contiguous(), out[0].contiguous()))
        return out, weights

    ALL_ATTENTION_FUNCTIONS["sdpa"] = capture
    print(f"{os.path.basename(os.path.normpath(model_dir))}: torch {torch.__version__}, {torch.cuda.get_device_name()}")
    totals = {binary: [0, 0] for binary in binaries}
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        for s, ids in enumerate(sequences):
            captured.clear()
            model(torch.tensor([ids], device="cuda"))
            for layer, q, k, v, ref in captured:
                length = q.shape[0]
                if dump:
                    stem = os.path.join(dump, f"s{s}_l{layer}_{length}_{q.shape[1]}_{k.shape[1]}_{q.shape[2]}")
                    write_attention_input(q, k, v, stem + ".in.bin")
                    write_bf16(ref, stem + ".ref.bin")
                for binary in binaries:
                    got = strata_attention(binary, q, k, v, tmp)
                    same = (got.view(torch.int16) == ref.view(torch.int16)).all(dim=-1)
                    bad = [(int(t), int(h)) for t, h in (~same).nonzero().tolist()]
                    diff = (got.float() - ref.float()).abs().max().item()
                    totals[binary][0] += int(same.sum())
                    totals[binary][1] += same.numel()
                    print(f"{os.path.basename(binary)}: sequence {s} ({length}) layer {layer}: identical "
                          f"{int(same.sum())}/{same.numel()}, max diff {diff:.2e}, differing (token, head) {bad[:8]}",
                          flush=True)
    for binary, (same, rows) in totals.items():
        print(f"{os.path.basename(binary)}: all layers and sequences: identical {same}/{rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
