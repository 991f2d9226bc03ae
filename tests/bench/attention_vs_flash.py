#!/usr/bin/env python3
"""strata's prefill attention against torch SDPA's FlashAttention-2 (and cuDNN), bit for bit.

For each shape, draws q, k, v in bf16 (normal, fixed seed), runs strata_attention_io (each
binary given: builds of the kernel that differ in one rounding choice can be compared in one
run) and torch.nn.functional.scaled_dot_product_attention with the flash and the cuDNN backend
forced (causal, scale 1/sqrt(head_dim), k and v repeated to the query heads), and prints per
binary and backend the share of (token, head) rows that are bitwise identical, the first token
with a differing row, and the largest difference.

With --dump DIR, each shape's q, k, v and outputs (L_heads_kv_hd.{q,k,v,flash,cudnn,BINARY}.bf16)
are written there for study off the GPU.

usage: attention_vs_flash.py [--dump DIR] STRATA_ATTENTION_IO [MORE_BINARIES...]
"""
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = ((37, 4, 2, 64), (150, 4, 2, 64), (300, 4, 2, 64), (1000, 4, 2, 64), (1000, 32, 8, 128), (333, 16, 16, 32),
          (300, 32, 8, 128))


def sdpa(q, k, v, backend):
    group = q.shape[1] // k.shape[1]
    qt, kt, vt = (x.transpose(0, 1).unsqueeze(0) for x in (q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)))
    with sdpa_kernel([backend]):
        out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, scale=q.shape[-1] ** -0.5)
    return out[0].transpose(0, 1).contiguous()


def write_bf16(t, path):
    """A bf16 tensor's raw bits to a file."""
    t.contiguous().view(torch.int16).cpu().numpy().tofile(path)


def write_attention_input(q, k, v, path):
    """q, k, v one after the other: strata_attention_io's input file."""
    write_bf16(torch.cat([q.flatten(), k.flatten(), v.flatten()]), path)


def dump_option(args):
    """Splits a leading `--dump DIR` off args (creating DIR): (DIR or None, the rest)."""
    if args[:1] != ["--dump"]:
        return None, args
    os.makedirs(args[1], exist_ok=True)
    return args[1], args[2:]


def strata_attention(binary, q, k, v, tmp):
    """strata_attention_io on q [L, heads, head_dim], k and v [L, kv_heads, head_dim] (bf16, on
    the GPU): its output, same shape as q, on the GPU. tmp: a folder for the files."""
    src, dst = os.path.join(tmp, "in.bin"), os.path.join(tmp, "out.bin")
    write_attention_input(q, k, v, src)
    length, heads, head_dim = q.shape
    subprocess.run([binary, str(length), str(heads), str(k.shape[1]), str(head_dim), src, dst], check=True)
    return torch.from_file(dst, size=q.numel(), dtype=torch.int16).view(torch.bfloat16).view(q.shape).cuda()


def main():
    dump, args = dump_option(sys.argv[1:])
    if not args:
        sys.exit(__doc__.strip().splitlines()[-1])
    binaries = args
    gen = torch.Generator(device="cuda").manual_seed(20261202)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    print(f"{'L':>5} {'heads':>5} {'kv':>3} {'hd':>4} {'binary':28} {'vs':6} {'identical rows':>15} {'first token':>11} {'max diff':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for length, heads, kv_heads, head_dim in SHAPES:
            q = torch.randn(length, heads, head_dim, device="cuda", generator=gen).bfloat16()
            k = torch.randn(length, kv_heads, head_dim, device="cuda", generator=gen).bfloat16()
            v = torch.randn(length, kv_heads, head_dim, device="cuda", generator=gen).bfloat16()
            refs = {}
            for label, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
                try:
                    refs[label] = sdpa(q, k, v, backend)
                except RuntimeError as e:
                    print(f"  {label} not available: {str(e).splitlines()[0][:80]}")
            tag = f"{length}_{heads}_{kv_heads}_{head_dim}"
            if dump:
                for name, t in (("q", q), ("k", k), ("v", v), *refs.items()):
                    write_bf16(t, os.path.join(dump, f"{tag}.{name}.bf16"))
            for binary in binaries:
                got = strata_attention(binary, q, k, v, tmp)
                if dump:
                    write_bf16(got, os.path.join(dump, f"{tag}.{os.path.basename(binary)}.bf16"))
                for label, ref in refs.items():
                    same = (got.view(torch.int16) == ref.view(torch.int16)).all(dim=-1)  # [L, heads]
                    bad_tokens = (~same).any(dim=-1).nonzero().flatten()
                    first = int(bad_tokens[0]) if bad_tokens.numel() else length
                    diff = (got.float() - ref.float()).abs().max().item()
                    print(f"{length:5d} {heads:5d} {kv_heads:3d} {head_dim:4d} {os.path.basename(binary):28} {label:6} "
                          f"{int(same.sum()):7d}/{same.numel():<7d} {first:11d} {diff:9.2e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
