#!/usr/bin/env bash
# Runs a queue of experiment shards one after another (one at a time: the machine is shared) and commits each
# finished shard's per-seed JSON under results/<experiment>/shard-<n>.
#
# Usage: scripts/run-shards.sh QUEUE_FILE [LOG]
# QUEUE_FILE: one shard per line, `<experiment> <shard-name> <extra args for 'metagrad run'…>`, e.g.
#   evograd-toy shard-0 --seeds 0-19 --extras
#   hyperdistill-sinusoid shard-1 --seeds 3-5
# An experiment that is not seeded (E4 evograd-cost) takes `--whole`: it runs without --no-merge and writes its
# report.md/results.json into the shard directory (the `seeds/` check then looks for results.json).
# Blank lines and lines starting with '#' are skipped. Lines are read afresh after every shard, so the queue can be
# extended while it runs; a shard whose directory already holds seeds/ is skipped. Wall time per shard goes to LOG
# (default /tmp/run-shards.log) and to results/<experiment>/<shard-name>/wall.txt.
set -u
queue=${1:?queue file}
log=${2:-/tmp/run-shards.log}
cd "$(dirname "$0")/.."
done_list=$(mktemp)
while :; do
  line=""
  while IFS= read -r l; do
    l="${l%%#*}"; [ -z "${l// }" ] && continue
    key=$(echo "$l" | awk '{print $1"/"$2}')
    grep -qxF "$key" "$done_list" && continue
    line="$l"; break
  done < "$queue"
  [ -z "$line" ] && break
  read -r exp shard args <<<"$line"
  echo "$exp/$shard" >> "$done_list"
  out="results/$exp/$shard"
  merge="--no-merge"
  case " $args " in *" --whole "*) merge=""; args="${args/--whole/}";; esac
  if [ -d "$out/seeds" ] || [ -f "$out/results.json" ]; then echo "$(date -u +%FT%TZ) skip $out (exists)" >> "$log"; continue; fi
  echo "$(date -u +%FT%TZ) start $out: pnpm -s metagrad run $exp $args $merge --out $out" >> "$log"
  t0=$(date +%s)
  pnpm -s metagrad run "$exp" $args $merge --out "$out" > "/tmp/shard-$exp-$shard.log" 2>&1
  rc=$?
  t1=$(date +%s)
  echo "$(date -u +%FT%TZ) end $out rc=$rc wall=$((t1 - t0))s" >> "$log"
  if [ $rc -eq 0 ]; then
    echo "metagrad run $exp $args $merge --out $out: rc 0, wall $((t1 - t0)) s, $(nproc) cores, $(date -u +%FT%TZ)" > "$out/wall.txt"
    for try in 1 2 3 4 5; do
      git add -- "$out" && git commit -q -m "results: $exp $shard ($args), wall $((t1 - t0)) s on the shared 2-core llvmpipe machine" -- "$out" && break
      sleep 5
    done
  fi
done
echo "$(date -u +%FT%TZ) queue empty" >> "$log"
rm -f "$done_list"
