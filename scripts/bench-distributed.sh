#!/usr/bin/env bash
# Data-parallel step time and communication share at W = 1, 2, 3 ranks on this machine, built-in
# model (the `siglip train` recipe), one thread per rank; then the bytes a B/16 step sends per rank.
# Not a test: figures for docs and notes. Needs Open MPI's mpirun and a Release build:
#   dotnet build SigLip.Reference.sln -c Release && scripts/bench-distributed.sh [STEPS] [BATCH] [BACKEND]
# Each W trains STEPS steps (default 40) of global batch BATCH (default 24, divisible by 1, 2, 3) on
# BACKEND (default managed, float32) under `mpirun -np W` and reads the report's seconds_per_step and
# communication_seconds_per_step (rank 0's time inside communicator calls, waiting included).
set -euo pipefail
steps=${1:-40}
batch=${2:-24}
backend=${3:-managed}
root=$(cd "$(dirname "$0")/.." && pwd)
siglip="$root/src/SigLip.Cli/bin/Release/net10.0/siglip.dll"
[ -f "$siglip" ] || { echo "error: $siglip is missing; run: dotnet build SigLip.Reference.sln -c Release" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "error: mpirun is not on PATH; install Open MPI (apt-get install openmpi-bin)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 TERM=dumb
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) cores; backend $backend; built-in model; global batch $batch; $steps steps; 1 thread per rank"
printf '%-3s %14s %18s %8s\n' W "ms/step" "comm ms/step" share
for w in 1 2 3; do
  mpirun -np "$w" --oversubscribe dotnet "$siglip" train --backend "$backend" --threads 1 --steps "$steps" --batch-size "$batch" \
    --checkpoint-every 0 --skip-golden-check --out "$work/w$w" --report "$work/w$w.json" > "$work/w$w.log" 2>&1 \
    || { echo "error: W=$w failed; its output:" >&2; cat "$work/w$w.log" >&2; exit 1; }
  python3 - "$work/w$w.json" "$w" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<3} {1000*r['seconds_per_step']:14.1f} {1000*r['communication_seconds_per_step']:18.1f} {100*r['communication_share']:7.0f}%")
PY
done
echo
dotnet "$siglip" traffic --config b16 --batch-size 4800 --ranks 2,3,4,8,16 --element-bytes 4
