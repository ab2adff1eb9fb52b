#!/usr/bin/env bash
# The GPU check as run on a lent GPU machine that has PyTorch, cuda-bindings and OpenCV but no network
# and no PyAV: copy the few real files it needs, and PyAV's wheel, into .gpu-assets/ (ignored by git) here,
# carry that folder, and run
#   bash tools/device_gpu_check.sh run     (there; writes $OUT/gpu_check.json; about 2 minutes)
#   bash tools/device_gpu_check.sh run-all (the same, and benchmarks/qat_long.py into $OUT/qat/; about 5 minutes)
# after
#   bash tools/device_gpu_check.sh stage   (here, beside ../shared/assets).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  stage)
    src=${SREDGE_ASSETS:-../shared/assets}
    for f in weights/fsrcnn/fsrcnn_x3.pth weights/espcn/espcn_x3.pt weights/vdsr/vdsr_model_epoch_50.pth \
             weights/srvgg/realesr-animevideov3.pth weights/fsrcnn/fsrcnn_x2.pth; do
      mkdir -p ".gpu-assets/$(dirname "$f")" && cp "$src/$f" ".gpu-assets/$f"
    done
    mkdir -p .gpu-assets/video .gpu-assets/wheels .gpu-assets/calibration
    cp -r "$src/calibration/T91" .gpu-assets/calibration/  # for benchmarks/qat_long.py
    cp "$src/video/onepiece_demo.mp4" .gpu-assets/video/
    # PyAV for the machine's Python 3.12 (an abi3 wheel), the version installed here.
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 -d .gpu-assets/wheels "av==$(python3 -c 'import av; print(av.__version__)')"
    for s in 3 4; do
      mkdir -p .gpu-assets/benchmarks/Set5/LR_bicubic/X$s
      cp "$src"/benchmarks/Set5/LR_bicubic/X$s/*.png .gpu-assets/benchmarks/Set5/LR_bicubic/X$s/
    done
    du -sh .gpu-assets ;;
  run|run-all)
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu-check-site .gpu-assets/wheels/*.whl
    export PYTHONPATH=src:/tmp/gpu-check-site PYTHONUNBUFFERED=1
    out=${OUT:-.}
    if [ "$1" = run-all ]; then  # also the FSRCNN x2 QAT runs of benchmarks/qat_long.py, side by side (about 5 min)
      python3 benchmarks/qat_long.py --model .gpu-assets/weights/fsrcnn/fsrcnn_x2.pth \
        --data .gpu-assets/calibration/T91 --device cuda --budget 240 --out "$out/qat" >"$out/qat.log" 2>&1 &
    fi
    rc=0
    python3 tools/gpu_check.py --assets .gpu-assets --report "$out/gpu_check.json" || rc=$?
    if [ "$1" = run-all ]; then
      wait $! || rc=$?
      tail -c 3000 "$out/qat.log"
    fi
    exit $rc ;;
  *) echo "usage: $0 stage|run|run-all" >&2; exit 2 ;;
esac
