#!/usr/bin/env bash
# The GPU check of issue 8 on the device machine (see benchmarks/bench_gpu.py's docstring).
# Uses the machine's own python3 (with PyTorch) and this checkout's src/; the Fashion-MNIST
# IDX files travel in .gpu_data (carry it). Results land in $OUT (or results/gpu).
set -uo pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-results/gpu}"
mkdir -p "$OUT"
nvidia-smi | tee "$OUT/nvidia-smi.txt"
python3 -c "import torch, sklearn, yaml, tqdm; print('torch', torch.__version__, torch.cuda.get_device_name(0))" || exit 2
timeout 540 python3 benchmarks/bench_gpu.py --fashion .gpu_data --out "$OUT" 2>&1 | tee "$OUT/bench_gpu.log"
