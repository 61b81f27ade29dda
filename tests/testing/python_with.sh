# Sourced by e2e test scripts: python_with MODULE... prints the first Python interpreter
# (python3 on the PATH, then Debian's /usr/bin/python3) that imports every MODULE, or nothing.
python_with() {
  local imports candidate
  imports=$(IFS=,; echo "$*")
  for candidate in python3 /usr/bin/python3; do
    if "$candidate" -c "import $imports" 2>/dev/null; then echo "$candidate"; return; fi
  done
}

# python_or_skip MODULE...: sets `python` to python_with's interpreter, or prints why the test
# is skipped (naming Debian's python3-MODULE packages) and exits 77, CTest's skip code here.
python_or_skip() {
  python=$(python_with "$@")
  if [[ -z $python ]]; then
    local modules packages
    modules=$(echo "$*" | sed 's/ / and /g')
    packages=$(printf 'python3-%s, ' "$@")
    echo "SKIP: no python3 with $modules (Debian: ${packages%, })"
    exit 77
  fi
}
