#!/usr/bin/env python3
"""Teacher-forced logits of transformers in bf16 on the GPU, for strata_cuda_tests.

For every checkpoint folder given, runs fixed random token sequences through transformers'
own model (dtype bfloat16, sdpa attention, on cuda) and writes, into --out:
  NAME.json        vocab size, the token sequences, and transformers' bf16-vs-fp32 agreement
                   (the spread bf16 itself causes, for reading the CUDA-vs-CPU numbers), and
                   its bf16 run with eager attention against the reference (sdpa) bf16 run (the
                   spread an implementation choice inside transformers causes)
  NAME.bf16.f32    the bf16 run's logits as float32, every position of every sequence in order
CudaExecutorTest.LogitsAgreeWithTransformersBf16 reads them (STRATA_TRANSFORMERS_LOGITS=DIR)
and feeds the same sequences through strata's CUDA executor. Needs torch and transformers only.

usage: transformers_logits.py --out DIR MODEL_DIR...
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import transformers

LENGTHS = (37, 90, 150)  # as the CPU-reference test, capped at max_position_embeddings
SEED = 20261201


def test_sequences(config):
    """The fixed random token sequences every script here feeds (LENGTHS, capped)."""
    rng = np.random.RandomState(SEED)
    cap = min(config.max_position_embeddings, 256)
    return [rng.randint(0, config.vocab_size, size=min(n, cap)).tolist() for n in LENGTHS]


def relative_l2(a, b):
    return float(torch.linalg.vector_norm(a - b) / torch.clamp(torch.linalg.vector_norm(b), min=1e-30))


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids], device="cuda")).logits[0].float()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, {torch.cuda.get_device_name()}")
    print(f"{'model':24} {'rows':>5} {'bf16 vs fp32 worst rel L2':>26} {'same argmax':>12} "
          f"{'eager vs sdpa bf16 worst':>25} {'same argmax':>12}")
    for model_dir in args.models:
        name = os.path.basename(os.path.normpath(model_dir))
        config = transformers.AutoConfig.from_pretrained(model_dir)
        vocab = config.vocab_size
        sequences = test_sequences(config)
        bf16 = transformers.AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
        fp32 = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).cuda().eval()
        eager = transformers.AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.bfloat16, attn_implementation="eager").cuda().eval()
        rows, worst, same, eager_worst, eager_same = [], 0.0, 0, 0.0, 0
        for ids in sequences:
            got, ref, other = logits_of(bf16, ids), logits_of(fp32, ids), logits_of(eager, ids)
            for r in range(len(ids)):
                worst = max(worst, relative_l2(got[r], ref[r]))
                eager_worst = max(eager_worst, relative_l2(other[r], got[r]))
            same += int((got.argmax(-1) == ref.argmax(-1)).sum())
            eager_same += int((other.argmax(-1) == got.argmax(-1)).sum())
            rows.append(got.cpu().numpy().astype(np.float32))
        total = sum(len(s) for s in sequences)
        np.concatenate(rows).tofile(os.path.join(args.out, f"{name}.bf16.f32"))
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump({"model": name, "vocab_size": vocab, "sequences": sequences,
                       "transformers": transformers.__version__, "device": torch.cuda.get_device_name(),
                       "bf16_vs_fp32": {"worst_relative_l2": worst, "same_argmax": same, "rows": total},
                       "bf16_eager_vs_sdpa": {"worst_relative_l2": eager_worst, "same_argmax": eager_same,
                                              "rows": total}}, f)
        print(f"{name:24} {total:5d} {worst:26.4f} {same / total:12.3f} {eager_worst:25.4f} {eager_same / total:12.3f}")
        del bf16, fp32, eager
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
