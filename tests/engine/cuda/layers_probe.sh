#!/usr/bin/env bash
# Where strata's bf16 logits first part from transformers', by depth: copies of a checkpoint
# cut to 1, 2, 4 and 8 layers (the same weights, symlinked; strata and transformers both read
# only the layers the config names) go under tests/golden/models/zdepthN, transformers' logits
# and strata's (LogitsAgreeWithTransformersBf16 with STRATA_LOGITS_DUMP) are taken for each,
# and per depth the positions whose logits are not bitwise equal are printed. Run on a GPU
# machine from the repository root; removes the copies afterwards.
# usage: tests/engine/cuda/layers_probe.sh BUNDLE_DIR [MODEL_DIR=models/default]
set -euo pipefail
bundle=${1:?usage: layers_probe.sh BUNDLE_DIR [MODEL_DIR]}
model=${2:-models/default}
export LD_LIBRARY_PATH=$bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export STRATA_REQUIRE_GPU=1 STRATA_SOURCE_DIR=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work" tests/golden/models/zdepth*' EXIT
for n in 1 2 4 8; do
  d=tests/golden/models/zdepth$n
  mkdir -p "$d"
  for f in "$model"/*; do
    [[ $(basename "$f") == config.json ]] || ln -sf "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$d/"
  done
  python3 -c "import json; c = json.load(open('$model/config.json')); c['num_hidden_layers'] = $n; json.dump(c, open('$d/config.json', 'w'))"
done
python3 tests/engine/cuda/transformers_logits.py --out "$work" tests/golden/models/zdepth* > "$work/transformers.log" 2>&1
STRATA_TRANSFORMERS_LOGITS=$work STRATA_LOGITS_DUMP=$work "$bundle/bin/strata_cuda_tests" \
  --gtest_filter='*LogitsAgreeWithTransformersBf16*zdepth*' > "$work/strata.log" 2>&1 || true
python3 - "$work" <<'PY'
import json
import sys
import numpy as np
work = sys.argv[1]
for n in (1, 2, 4, 8):
    with open(f"{work}/zdepth{n}.json") as f:
        lengths = [len(ids) for ids in json.load(f)["sequences"]]
    want = np.fromfile(f"{work}/zdepth{n}.bf16.f32", dtype=np.float32).reshape(sum(lengths), -1)
    got = np.fromfile(f"{work}/zdepth{n}.strata.f32", dtype=np.float32).reshape(sum(lengths), -1)
    same = (want == got).all(axis=1)
    rel = np.linalg.norm(want - got, axis=1) / np.linalg.norm(want, axis=1)
    start, differ = 0, []
    for length in lengths:
        differ.append([int(i) for i in np.nonzero(~same[start:start + length])[0][:6]])
        start += length
    print(f"{n} layers: {int(same.sum())}/{same.size} positions bitwise equal, worst rel. L2 {rel.max():.4f} "
          f"(row {int(rel.argmax())}), first differing positions per sequence {differ}")
PY
