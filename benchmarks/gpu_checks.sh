#!/usr/bin/env bash
# Every GPU check of dlrun in one command: the CUDA tests, then the benchmark on the GPU.
#
#   bash benchmarks/gpu_checks.sh prepare   # HERE, with pip access: wheels for what the GPU image lacks
#   bash benchmarks/gpu_checks.sh           # THERE (a CUDA machine): tests + benchmark, logs in $OUT
#
# Made for a lent machine that has torch, torchvision, Lightning, pytest and scikit-learn but no
# Hydra and no network (see the `device` tool's KINDS.md): `prepare` puts hydra-core, omegaconf
# and antlr4 wheels in .whl/ (git-ignored; carry it), the run installs them to /tmp/site and runs
# dlrun from this checkout. On a machine where `pip install -e ".[test,bench]"` works, skip
# `prepare`. Budget: an estimated 6 minutes on an H100 (not yet timed there).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "prepare" ]; then
    rm -rf .whl && mkdir -p .whl
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
    # pure-Python wheels (antlr4 4.9.3 is published as an sdist only: build its wheel here)
    python3 -m pip wheel -q --no-deps -w .whl "hydra-core==1.3.2" "omegaconf==2.3.0" \
        "antlr4-python3-runtime==4.9.3"
    ls -l .whl
    exit
fi

out=${OUT:-gpu-logs}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} 2>&1 | tee "$out/machine.txt"

# The CUDA tests, one at a time on the one GPU (no xdist workers).
python3 -m pytest -m gpu tests/gpu -n 0 -q -p no:cacheprovider 2>&1 | tee "$out/gpu_tests.log"

# Samples/s against the seeds' loop, a minimal loop and Lightning, on the GPU. resnet9_cifar is
# experiment=cifar10_speed's net (goal d/b >= 0.95): three repeats; the other cases one each, to
# stay inside one 10-minute call. More images than on a CPU so that a GPU epoch is long enough to
# time.
python3 benchmarks/compare.py --device cuda --cases resnet9_cifar --epochs 3 --repeats 3 \
    --cifar-images 10000 2>&1 | tee "$out/compare_resnet9.log"
python3 benchmarks/compare.py --device cuda --cases resnet18_cifar,lenet_mnist,mlp_digits \
    --epochs 3 --repeats 1 --cifar-images 10000 2>&1 | tee "$out/compare_others.log"
