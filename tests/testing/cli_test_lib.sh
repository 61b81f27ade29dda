# Sourced by the tests that run the `usine` executable on a small real corpus (the repository's
# docs and README, tokenised with the test tokenizer) and a 2-layer GPT:
#   source "$source_dir/tests/testing/cli_test_lib.sh"
#   cli_test_setup NAME USINE TOKENIZER_DIR SOURCE_DIR MPIEXEC
#   prep_docs "$dir/data" 0.1
#   { tiny_model_toml; echo '[data]'; ... } >"$dir/run.toml"
# cli_test_setup sets usine, tokenizer, source_dir, dir (a temporary directory, removed at
# exit unless the caller sets its own EXIT trap after), mpirun (an array: mpiexec with
# --oversubscribe, and --allow-run-as-root as root), fail=0 and `failed MESSAGE` (prints FAIL
# and sets fail=1; a test without usine sets fail=0 itself and uses `failed` and `check`); it
# exports one cpu thread per rank, so that runs are bit-for-bit
# repeatable.

cli_test_setup() {
  usine=$(realpath "$2") tokenizer=$3 source_dir=$4
  dir=$(mktemp -d "/tmp/usine_$1_XXXXXX")
  trap 'rm -rf "$dir"' EXIT
  mpirun=("$5" --oversubscribe)
  [[ $(id -u) -eq 0 ]] && mpirun+=(--allow-run-as-root)
  export USINE_CPU_THREADS=1 OPENBLAS_NUM_THREADS=1
  fail=0
}

failed() {
  echo "FAIL: $*"
  fail=1
}

# check DESCRIPTION COMMAND...: the command must succeed, else `failed DESCRIPTION`.
check() {
  local what=$1
  shift
  "$@" || failed "$what"
}

# prep_docs OUT VAL_FRACTION: the docs and README as token shards in OUT (exits on failure).
prep_docs() {
  "$usine" prep "$source_dir/docs" "$source_dir/README.md" --out "$1" \
    --tokenizer-dir "$tokenizer" --val-fraction "$2" >>"$dir/prep.log" 2>&1 ||
    { cat "$dir/prep.log"; echo "FAIL: usine prep"; exit 1; }
}

# The [model] section of the tests' runs: a 2-layer, 64-wide GPT over GPT-2's vocabulary.
tiny_model_toml() {
  cat <<'TOML'
[model]
preset = "tiny"
n_layer = 2
n_head = 4
n_embd = 64
block_size = 64
vocab_size = 50257
TOML
}
