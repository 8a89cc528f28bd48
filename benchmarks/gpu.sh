#!/usr/bin/env bash
# GPU benchmark: gmlp-small trained with the cached (GradCache) InfoNCE loss at a large batch (1024 pairs of
# 128-residue crops, bf16 autocast) for ~5 minutes on one H100/H200; writes MFU, tokens/s, peak memory and the dev
# recall@100/@300 + AUC1 curve to one JSON file. Whole run under 10 minutes (training stops 8 minutes after the
# start whatever happens).
# Details: benchmarks/gpu_train.py; results and how they were run: docs/performance.md ("GPU training benchmark").
#
# Usage (repository root):
#   benchmarks/gpu.sh --smoke [--out FILE]        # CPU, seconds, synthetic data: checks the script end to end
#   benchmarks/gpu.sh [--out FILE] [options]      # the benchmark; options go to `gpu_train.py train` (--help)
#
# Nothing is installed and nothing is downloaded: the script runs the checkout through PYTHONPATH with the
# python that already holds torch and numpy (PYTHON, default python3). phylocl's readers need biopython, which a
# bare GPU image lacks, so the data travel as one pack made beforehand on the CPU machine:
#   python benchmarks/gpu_train.py pack            # -> runs/gpu-data/protein.npz (a few MB; ../shared/data)
# then carry runs/gpu-data to the GPU machine (device tool: carry ["runs/gpu-data"]) and run
#   bash benchmarks/gpu.sh --out $OUT/gpu.json
# Exit code: 0 ok, 1 partial or failed run (the JSON says what finished), 2 missing prerequisites.
set -u
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

check="import torch, numpy, phylocl.models.registry, phylocl.training.gradcache
c = torch.cuda.is_available()
print('gpu.sh: torch', torch.__version__, '| device:', torch.cuda.get_device_name(0) if c else 'cpu (no CUDA)')"
if ! err=$("$PY" -c "$check" 2>&1); then
    echo "gpu.sh: '$PY' cannot import torch, numpy and phylocl's model code from $PWD:" >&2
    echo "  $(printf '%s\n' "$err" | tail -n 1)" >&2
    echo "  use a python with torch installed (PYTHON=/path/to/python benchmarks/gpu.sh ...)" >&2
    exit 2
fi
echo "$err" >&2
exec "$PY" benchmarks/gpu_train.py train "$@"
