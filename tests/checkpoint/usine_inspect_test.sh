#!/usr/bin/env bash
# `usine inspect`: a checkpoint written by checkpoint_tool is listed and verifies; one byte
# changed in a tensor makes --verify fail naming it; a file that is not HDF5 is an error.
#   usine_inspect_test.sh USINE TOOL
set -euo pipefail
usine=$1
tool=$2
dir=$(mktemp -d /tmp/usine_inspect_XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$tool" save "$dir" 2 1
out=$("$usine" inspect "$dir")
echo "$out"
grep -q "step-00000002.h5: usine checkpoint, format version 2, written by 1 rank" <<<"$out" || fail header
grep -Eq "^  w_row +bf16 +\[12, 6\] +144 B" <<<"$out" || fail "w_row line"
grep -Eq "^  step +int64 +2$" <<<"$out" || fail "step line"
"$usine" inspect --verify "$dir/step-00000002.h5" | grep -q "verified: every tensor matches" ||
  fail "--verify of an intact file"

offset=$(h5dump -p -H -d /tensors/big "$dir/step-00000002.h5" | awk '/OFFSET/ {print $2}')
printf '\x55' | dd of="$dir/step-00000002.h5" bs=1 seek=$((offset + 1000)) conv=notrunc status=none
if out=$("$usine" inspect --verify "$dir/step-00000002.h5" 2>&1); then fail "damaged file verified"; fi
grep -Eq "^  big .*CRC MISMATCH" <<<"$out" || fail "no mismatch on big: $out"
grep -q "1 tensor do not match their CRC-32C" <<<"$out" || fail "no error line"

echo "not a checkpoint" >"$dir/text.h5"
if out=$("$usine" inspect "$dir/text.h5" 2>&1); then fail "text file inspected"; fi
grep -q "is not an HDF5 file" <<<"$out" || fail "text file message: $out"
echo PASS
