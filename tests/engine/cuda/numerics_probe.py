#!/usr/bin/env python3
"""Which implementation choice moves transformers' bf16 logits as far as strata's CUDA run is.

Runs the sequences of transformers_logits.py through transformers in bf16 (sdpa attention,
as it chooses: the reference), then again with one choice changed at a time, the choices
strata's CUDA executor makes differently from transformers' modules:
  flash         SDPA's flash backend forced (strata's prefill kernel is FlashAttention-2)
  fused_qkv     q, k and v projections as one GEMM over the concatenated weights
  fused_gate_up gate and up projections as one GEMM
  cublaslt      torch's GEMMs through cuBLASLt (as strata's) instead of cuBLAS
  rope_fp32     RoPE applied in fp32 and rounded once
  logits_fp32   the LM head's GEMM written in fp32, not rounded to bf16
  libm_inv_freq RoPE frequencies as strata computes them: 1.0f / powf(theta, 2i / d) in fp32
                with the C library's powf, instead of torch's pow
and combinations. Per variant: worst (row) and mean relative L2 of the logits against the
reference, and, with --strata FILE (CudaExecutorTest.LogitsAgreeWithTransformersBf16 writes
it where STRATA_LOGITS_DUMP names a folder), against strata's logits. The variant closest to
strata shows which choices its numerics follow; the spread of each against the reference
shows how sensitive the checkpoint is to it.

usage: numerics_probe.py MODEL_DIR [--strata NAME.strata.f32]
"""
import argparse
import contextlib
import ctypes
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers.models.llama import modeling_llama
from transformers_logits import test_sequences



def fuse_qkv(model):
    """q_proj computes all three projections in one GEMM; k_proj and v_proj hand out its slices."""
    for layer in model.model.layers:
        attn = layer.self_attn
        q, k, v = attn.q_proj, attn.k_proj, attn.v_proj
        weight = torch.cat([q.weight, k.weight, v.weight]).contiguous()
        sizes = [q.weight.shape[0], k.weight.shape[0], v.weight.shape[0]]
        state = {}

        def q_forward(x, weight=weight, sizes=sizes, state=state):
            state["kv"] = F.linear(x, weight).split(sizes, dim=-1)
            return state["kv"][0]

        q.forward = q_forward
        k.forward = lambda x, state=state: state["kv"][1]
        v.forward = lambda x, state=state: state["kv"][2]


def fuse_gate_up(model):
    for layer in model.model.layers:
        mlp = layer.mlp
        weight = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).contiguous()
        n = mlp.gate_proj.weight.shape[0]

        def forward(x, mlp=mlp, weight=weight, n=n):
            gate, up = F.linear(x, weight).split([n, n], dim=-1)
            return mlp.down_proj(mlp.act_fn(gate) * up)

        mlp.forward = forward


def rope_fp32(model):
    original = modeling_llama.apply_rotary_pos_emb

    def apply(q, k, cos, sin, *args, **kwargs):
        qf, kf = original(q.float(), k.float(), cos.float(), sin.float(), *args, **kwargs)
        return qf.to(q.dtype), kf.to(k.dtype)

    modeling_llama.apply_rotary_pos_emb = apply
    return lambda: setattr(modeling_llama, "apply_rotary_pos_emb", original)


def logits_fp32(model):
    head = model.lm_head
    head.forward = lambda x, head=head: torch.matmul(x.float(), head.weight.float().t())


def rope_theta(config):
    theta = getattr(config, "rope_theta", None)
    return float(theta if theta is not None else config.rope_parameters["rope_theta"])


def libm_inv_freq(config):
    """strata's RoPE frequencies (kernels/cpu/rope.cpp rope_inv_freq): fp32, the C library's powf."""
    libm = ctypes.CDLL("libm.so.6")
    libm.powf.restype = ctypes.c_float
    libm.powf.argtypes = [ctypes.c_float, ctypes.c_float]
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    theta = np.float32(rope_theta(config))
    out = [np.float32(1.0) / np.float32(libm.powf(float(theta), float(np.float32(2 * i) / np.float32(dim))))
           for i in range(dim // 2)]
    return torch.tensor(np.array(out, dtype=np.float32))


def set_inv_freq(model, inv_freq):
    rotary = model.model.rotary_emb
    rotary.inv_freq = inv_freq.to(rotary.inv_freq.device)
    if hasattr(rotary, "original_inv_freq"):
        rotary.original_inv_freq = rotary.inv_freq


VARIANTS = {
    "flash": ("flash",),
    "fused_qkv": ("fused_qkv",),
    "fused_gate_up": ("fused_gate_up",),
    "fused_both": ("fused_qkv", "fused_gate_up"),
    "cublaslt": ("cublaslt",),
    "rope_fp32": ("rope_fp32",),
    "logits_fp32": ("logits_fp32",),
    "flash+fused_both": ("flash", "fused_qkv", "fused_gate_up"),
    "flash+cublaslt": ("flash", "cublaslt"),
    "flash+cublaslt+fused": ("flash", "cublaslt", "fused_qkv", "fused_gate_up"),
    "flash+cublaslt+fused+lf32": ("flash", "cublaslt", "fused_qkv", "fused_gate_up", "logits_fp32"),
    "libm_inv_freq": ("libm_inv_freq",),
    "flash+libm_inv_freq": ("flash", "libm_inv_freq"),
}


def rel_rows(a, b):
    return torch.linalg.vector_norm(a - b, dim=-1) / torch.linalg.vector_norm(b, dim=-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--strata")
    args = parser.parse_args()
    config = transformers.AutoConfig.from_pretrained(args.model)
    sequences = test_sequences(config)

    def run(choices=()):
        model = transformers.AutoModelForCausalLM.from_pretrained(
            args.model, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
        undo = []
        if "fused_qkv" in choices:
            fuse_qkv(model)
        if "fused_gate_up" in choices:
            fuse_gate_up(model)
        if "rope_fp32" in choices:
            undo.append(rope_fp32(model))
        if "logits_fp32" in choices:
            logits_fp32(model)
        if "libm_inv_freq" in choices:
            set_inv_freq(model, libm_inv_freq(config))
        previous_blas = torch.backends.cuda.preferred_blas_library()
        if "cublaslt" in choices:
            torch.backends.cuda.preferred_blas_library("cublaslt")
        rows = []
        try:
            with torch.no_grad():
                for ids in sequences:
                    attention = sdpa_kernel([SDPBackend.FLASH_ATTENTION]) if "flash" in choices else contextlib.nullcontext()
                    with attention:
                        out = model(torch.tensor([ids], device="cuda"))
                        logits = out.logits if hasattr(out, "logits") else out
                        rows.append(logits[0].float())
        finally:
            torch.backends.cuda.preferred_blas_library(previous_blas)
            for u in undo:
                u()
        return torch.cat(rows)

    probe = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).cuda().eval()
    theirs = probe.model.rotary_emb.inv_freq.detach().float().cpu()
    ours = libm_inv_freq(config)
    differ = (theirs != ours).nonzero().flatten().tolist()
    print(f"RoPE inv_freq: transformers' on {probe.model.rotary_emb.inv_freq.device}, {len(differ)} of {len(ours)} differ "
          f"from 1/powf (libm): {[(i, float(theirs[i]), float(ours[i])) for i in differ[:8]]}")
    for label, candidate in (("torch cpu pow", 1.0 / (rope_theta(config) ** (torch.arange(0, 2 * len(ours), 2).float() / (2 * len(ours))))),
                             ("torch cuda pow", (1.0 / (rope_theta(config) ** (torch.arange(0, 2 * len(ours), 2, device="cuda").float() / (2 * len(ours))))).cpu()),
                             ("double, rounded", torch.tensor([np.float32(1.0 / rope_theta(config) ** (2 * i / (2 * len(ours)))) for i in range(len(ours))]))):
        print(f"  {label:16} differs from transformers' at {int((candidate != theirs).sum())}, from libm at {int((candidate != ours).sum())}")
    del probe
    reference = run()
    strata = None
    if args.strata:
        strata = torch.from_numpy(np.fromfile(args.strata, dtype=np.float32)).cuda().view(reference.shape)
    name = os.path.basename(os.path.normpath(args.model))
    print(f"{name}: torch {torch.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name()}, "
          f"{reference.shape[0]} rows")
    print(f"{'variant':28} {'vs reference: worst (row)':>27} {'mean':>8}" +
          (f" {'vs strata: worst (row)':>24} {'mean':>8} {'identical':>9}" if strata is not None else ""))

    def line(label, got):
        rel = rel_rows(got, reference)
        text = f"{label:28} {rel.max().item():19.4f} ({int(rel.argmax()):3d}) {rel.mean().item():8.5f}"
        if strata is not None:
            rs = rel_rows(got, strata)
            text += f" {rs.max().item():16.4f} ({int(rs.argmax()):3d}) {rs.mean().item():8.5f} {int((rs == 0).sum()):9d}"
        print(text, flush=True)

    line("reference (sdpa as chosen)", reference)
    if strata is not None:
        line("strata", strata)
        same = (rel_rows(strata, reference) == 0).tolist()
        start = 0
        for n in (len(ids) for ids in sequences):
            row = same[start:start + n]
            first = row.index(False) if False in row else n
            print(f"  sequence of {n}: strata identical to the reference at {sum(row)} positions, first differs at {first}")
            start += n
    for label, choices in VARIANTS.items():
        try:
            line(label, run(choices))
        except Exception as e:  # a variant torch cannot run here is reported, not fatal
            print(f"{label:28} failed: {str(e).splitlines()[0][:100]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
