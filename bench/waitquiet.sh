#!/bin/bash
# Waits until the CPUs (all together, /proc/stat) were >= 90 % idle over 3 s (gives up after $1 seconds, default 300; exit 1).
# Used before each `siglip bench` run on the shared machine: see docs/fast-path.md, *matmul 1024*.
max=${1:-300}; t0=$(date +%s)
while true; do
  read -r _ u n s i w x y z _ < /proc/stat; a=$((u+n+s+i+w+x+y+z)); ai=$i
  sleep 3
  read -r _ u n s i w x y z _ < /proc/stat; b=$((u+n+s+i+w+x+y+z)); bi=$i
  idle=$(( 100*(bi-ai)/(b-a) ))
  if [ $idle -ge 90 ]; then echo "quiet (idle ${idle}%) after $(( $(date +%s)-t0 )) s"; exit 0; fi
  if [ $(( $(date +%s)-t0 )) -ge $max ]; then echo "NOT quiet (idle ${idle}%) after $max s"; exit 1; fi
done
