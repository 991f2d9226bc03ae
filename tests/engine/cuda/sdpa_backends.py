#!/usr/bin/env python3
"""Which attention backend transformers' sdpa run takes, and how far the others land from it.

For a checkpoint folder, runs the same fixed random sequences as transformers_logits.py
through transformers in bf16 (sdpa attention, on cuda), once as it chooses and once with each
of torch's SDPA backends forced (flash, efficient, cudnn, math), and prints per backend the
worst and mean relative L2 of the logits against the unforced run and how many positions are
bitwise identical (the backend the unforced run took gives all of them). --flash-out FILE
also writes the flash-forced logits as float32 in transformers_logits.py's layout, so that
CudaExecutorTest.LogitsAgreeWithTransformersBf16 can be pointed at them instead.

usage: sdpa_backends.py MODEL_DIR [--flash-out FILE]
"""
import argparse
import os
import sys

import numpy as np
import torch
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers_logits import test_sequences



def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--flash-out")
    args = parser.parse_args()
    name = os.path.basename(os.path.normpath(args.model))
    model = transformers.AutoModelForCausalLM.from_pretrained(
        args.model, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
    config = model.config
    sequences = test_sequences(config)

    def logits(backend=None):
        rows = []
        with torch.no_grad():
            for ids in sequences:
                x = torch.tensor([ids], device="cuda")
                if backend is None:
                    rows.append(model(x).logits[0].float())
                else:
                    with sdpa_kernel([backend]):
                        rows.append(model(x).logits[0].float())
        return torch.cat(rows)

    chosen = logits()
    print(f"{name}: torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    for label, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                           ("cudnn", SDPBackend.CUDNN_ATTENTION), ("math", SDPBackend.MATH)):
        try:
            got = logits(backend)
        except RuntimeError as e:
            print(f"  {label:10} not available: {str(e).splitlines()[0][:100]}")
            continue
        rel = torch.linalg.vector_norm(got - chosen, dim=-1) / torch.linalg.vector_norm(chosen, dim=-1)
        print(f"  {label:10} worst rel L2 {rel.max().item():.4f}, mean {rel.mean().item():.5f}, "
              f"identical rows {int((rel == 0).sum())}/{rel.numel()}")
        if label == "flash" and args.flash_out:
            got.cpu().numpy().astype(np.float32).tofile(args.flash_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
