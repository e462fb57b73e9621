#!/usr/bin/env bash
# The TorchSharp CUDA check, for a GPU machine that has PyTorch but no .NET (see docs/torchsharp.md).
# Here (with .NET):      ../shared/gpu/pack.sh src/SigLip.Cli/SigLip.Cli.csproj     (writes .gpu/, ~35 MB)
# There (project root):  bash scripts/gpu-check.sh                                  (carry .gpu/ along)
# It runs `golden verify --backend cuda` (float32, then bfloat16; the manifest's tolerances), then times the SigLIP
# B/16-224 training step at batch 256 in bf16 mixed precision. Total well under 8 minutes; each part
# has its own time limit. Output goes to the terminal and to ${OUT:-.gpu}/gpu-check.log.
# Environment: SIGLIP_LIBTORCH (PyTorch's torch/lib; found through python3 when unset),
#              GPU_CHECK_STEPS (timed steps, default 20), GPU_CHECK_BATCH (default 256).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .gpu/run.sh ]; then
  echo "no .gpu/run.sh: run ../shared/gpu/pack.sh src/SigLip.Cli/SigLip.Cli.csproj where .NET is, and bring .gpu/ here" >&2
  exit 2
fi
log=${OUT:-.gpu}/gpu-check.log
mkdir -p "$(dirname "$log")"
: > "$log"
say() { echo "$@" | tee -a "$log"; }
run() { # run LIMIT_SECONDS LABEL ARGS...: one program run with a time limit; records its exit status
  local limit=$1 label=$2; shift 2
  say "== $label: siglip $* (limit ${limit}s)"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" bash .gpu/run.sh "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  say "== $label: exit $rc after $((SECONDS - start)) s"
  return "$rc"
}

say "== $(date -u +%FT%TZ) on $(hostname)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log"
python3 -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tee -a "$log"

status=0
run 150 golden-float32 golden verify --backend cuda || status=1
run 120 golden-bfloat16 golden verify --backend cuda --dtype bfloat16 || status=1
run 300 throughput throughput --backend cuda --config b16 --batch "${GPU_CHECK_BATCH:-256}" --steps "${GPU_CHECK_STEPS:-20}" --dtype bfloat16 || status=1
say "== gpu-check: $([ $status -eq 0 ] && echo PASS || echo FAIL) (log: $log)"
exit $status
