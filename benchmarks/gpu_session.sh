#!/usr/bin/env bash
# The whole GPU check in one script, for a session that is lent a GPU machine (torch, transformers, peft,
# accelerate are in its image; the rest travels as wheels). Prepare here first, at no device time:
#     make gpu-wheels                       # the wheels the image lacks, into .whl/ (git-ignored)
# then run this on the GPU machine from the repository root, carrying .whl:
#     bash benchmarks/gpu_session.sh [SHAPE ...]      # default: llama3-8b qwen2.5-0.5b
# Each shape's log and JSON land in $OUT (else benchmarks/out/). flex_attention compiles for a minute or
# more per configuration (excluded from the figures, not from the wall time): give each shape ~8 minutes.
set -uo pipefail
out=${OUT:-benchmarks/out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/flywheel-site \
    .whl/*.whl || { echo "installing .whl/*.whl failed: run 'make gpu-wheels' here (Python 3.12 wheels) and carry .whl"; exit 1; }
export PYTHONPATH=/tmp/flywheel-site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 FLYWHEEL_HOME=/tmp/flywheel-home
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.csv"
python3 -c "import torch, transformers, peft, trl, datasets, liger_kernel
print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__,
      'trl', trl.__version__, 'datasets', datasets.__version__)" | tee "$out/versions.txt" || exit 1
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(llama3-8b qwen2.5-0.5b)
status=0
for shape in "${shapes[@]}"; do
    timeout "${SHAPE_TIMEOUT_S:-480}" python3 benchmarks/train_throughput.py --shape "$shape" --steps 20 --warmup 5 \
        --json "$out/$shape.json" >"$out/$shape.log" 2>&1 || { echo "$shape: failed or timed out, see $shape.log"; status=1; }
    grep -E "^(shape|SFT|DPO|ours)" "$out/$shape.log"
done
exit $status
