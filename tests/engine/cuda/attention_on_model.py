#!/usr/bin/env python3
"""strata's prefill attention on a checkpoint's own attention inputs, against transformers' sdpa.

Runs the sequences of transformers_logits.py through transformers in bf16 (sdpa attention),
captures every layer's query, key and value (after RoPE) and attention output, runs
strata_attention_io on the same q, k, v, and prints per layer how many (token, head) rows are
bitwise identical, and the differing ones. Where strata's whole-model logits drift from
transformers', this tells whether the attention kernel is where the first difference enters.

usage: attention_on_model.py STRATA_ATTENTION_IO MODEL_DIR
"""
import os
import sys
import tempfile

import torch
import transformers
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers_logits import test_sequences

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from attention_vs_flash import strata_attention  # noqa: E402



def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    binary, model_dir = sys.argv[1:]
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
    total = [0, 0]
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        for s, ids in enumerate(sequences):
            captured.clear()
            model(torch.tensor([ids], device="cuda"))
            for layer, q, k, v, ref in captured:
                length = q.shape[0]
                got = strata_attention(binary, q, k, v, tmp)
                same = (got.view(torch.int16) == ref.view(torch.int16)).all(dim=-1)
                bad = [(int(t), int(h)) for t, h in (~same).nonzero().tolist()]
                diff = (got.float() - ref.float()).abs().max().item()
                total[0] += int(same.sum())
                total[1] += same.numel()
                print(f"sequence {s} ({length}) layer {layer}: identical {int(same.sum())}/{same.numel()}, "
                      f"max diff {diff:.2e}, differing (token, head) {bad[:8]}", flush=True)
    print(f"all layers and sequences: identical {total[0]}/{total[1]} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
