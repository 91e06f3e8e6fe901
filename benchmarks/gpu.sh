#!/usr/bin/env bash
# The GPU numbers benchmarks/RESULTS.md asks for, as one prepared command for the device machine:
#   (1) the batched encoder's img/s for ViT-B-32 at 224 px (against a bare forward and the FLOP limit);
#   (2) one random-weight ViT-B-32 checkpoint through every analysis step, at 224 px, on small sets in the
#       real datasets' layouts (benchmarks/real_clip_cost.py);
#   (3) the default run (three seeds, every step) with device=cuda, without the book.
# The machine's image has torch but not open_clip, piq or papermill, and cannot download: first, here,
#   .venv/bin/python scripts/device_wheels.py
# then call the device tool with command "bash benchmarks/gpu.sh", carry [".whl"], timeout_s 480. Each part
# has its own time limit and the next runs regardless; logs and tables come back under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/clipalign-gpu}
mkdir -p "$OUT"
if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "gpu.sh: no wheels in .whl/: run scripts/device_wheels.py here, then carry .whl" >&2
    exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 2
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, open_clip, piq, papermill; print('torch', torch.__version__, '| open_clip', open_clip.__version__, '| cuda', torch.cuda.is_available())"
    nproc
} 2>&1 | tee "$OUT/device.txt"

part() {  # part NAME SECONDS COMMAND...: its output in $OUT/NAME.log, its exit status and time in $OUT/times.txt
    local name=$1 limit=$2 started
    shift 2
    started=$(date +%s)
    echo "== $name"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local status=$?
    tail -n 25 "$OUT/$name.log"
    echo "$name: exit $status in $(( $(date +%s) - started )) s (limit $limit s)" | tee -a "$OUT/times.txt"
}

part encoder 90 python3 benchmarks/encoder.py --model ViT-B-32 --image-size 224 --n 20000 --batch-size 1024 --device cuda
part real_clip 120 python3 benchmarks/real_clip_cost.py --device cuda --no-flops --out "$OUT/real_clip_cost_cuda.csv"
part default 200 python3 -m clipalign_utils.cli run --preset default --out /tmp/gpu-default -p device=cuda --no-book
if [ -d /tmp/gpu-default ]; then  # the tables (small), to compare with a CPU run's
    (cd /tmp/gpu-default && find . -path '*/metrics/*.csv' -o -name train_log.csv | tar -czf "$OUT/default_tables.tgz" -T -)
fi
cat "$OUT/times.txt"
