#!/usr/bin/env bash
# The GPU numbers benchmarks/RESULTS.md asks for, as one prepared command for the device machine:
#   (1) the batched encoder's img/s for ViT-B-32 at 224 px (against a bare forward and the FLOP limit);
#   (2) one random-weight ViT-B-32 checkpoint through every analysis step, at 224 px, on small sets in the
#       real datasets' layouts (benchmarks/real_clip_cost.py);
#   (3) the default run (three seeds, every step) with device=cuda, without the book.
# The machine's image has torch but not open_clip, piq or papermill, and cannot download: first, here,
#   .venv/bin/python scripts/device_wheels.py
# then call the device tool with command "COMMIT=<hash> bash benchmarks/gpu.sh", carry [".whl"], timeout_s 480. Each part
# has its own time limit and the next runs regardless; logs and tables come back under $OUT. Parts named as
# arguments run alone (a second call for one that failed: "bash benchmarks/gpu.sh default").
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/clipalign-gpu}
PARTS=" ${*:-encoder real_clip default} "
for name in $PARTS; do
    case $name in encoder|real_clip|default) ;; *)
        echo "gpu.sh: unknown part $name (parts: encoder real_clip default)" >&2; exit 2;; esac
done
# The commit measured: the device's copy of the tree may hold no .git, so the call can say it (COMMIT=<hash>).
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
mkdir -p "$OUT"
if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "gpu.sh: no wheels in .whl/: run scripts/device_wheels.py here, then carry .whl" >&2
    exit 2
fi
if ! python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl > "$OUT/pip.log" 2>&1; then
    echo "gpu.sh: installing the carried wheels failed (pip.log)" | tee -a "$OUT/device.txt" >&2
    exit 2
fi
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
{
    echo "commit $COMMIT, $(date -u +%FT%TZ)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    nproc
} 2>&1 | tee "$OUT/device.txt"
# Before the parts, in seconds: what they all import, and the GPU they all need (else nothing else runs).
if ! timeout 120 python3 -c "import torch, open_clip, piq, papermill, clipalign_utils.cli; print('torch', torch.__version__, '| open_clip', open_clip.__version__, '| cuda', torch.cuda.is_available()); assert torch.cuda.is_available(), 'torch sees no GPU'" 2>&1 | tee -a "$OUT/device.txt"; then
    echo "gpu.sh: the environment check failed (device.txt): no part was run" >&2
    exit 2
fi

part() {  # part NAME SECONDS COMMAND...: its output in $OUT/NAME.log, its exit status and time in $OUT/times.txt
    local name=$1 limit=$2 started
    shift 2
    started=$(date +%s)
    echo "== $name"
    timeout -k 15 "$limit" "$@" > "$OUT/$name.log" 2>&1  # (killed 15 s after its TERM if it lingers)
    local status=$?
    tail -n 25 "$OUT/$name.log"
    echo "$name: exit $status in $(( $(date +%s) - started )) s (limit $limit s)" | tee -a "$OUT/times.txt"
}

wants() { [[ "$PARTS" == *" $1 "* ]]; }

wants encoder && part encoder 90 python3 benchmarks/encoder.py --model ViT-B-32 --image-size 224 --n 20000 \
    --batch-size 1024 --device cuda
wants real_clip && part real_clip 120 python3 benchmarks/real_clip_cost.py --device cuda --no-flops \
    --out "$OUT/real_clip_cost_cuda.csv"
if wants default; then
    # a new folder each time: one left by an earlier call on a warm machine would be resumed, its steps skipped
    RUN=$(mktemp -d "${TMPDIR:-/tmp}/gpu-default.XXXXXX")
    part default 200 python3 -m clipalign_utils.cli run --preset default --out "$RUN" -p device=cuda --no-book
    # the tables (small), to compare with a CPU run's
    (cd "$RUN" && find . -path '*/metrics/*.csv' -o -name train_log.csv | tar -czf "$OUT/default_tables.tgz" -T -)
fi
cat "$OUT/times.txt" 2>/dev/null || true
