# Sourced by e2e test scripts: python_with MODULE... prints the first Python interpreter
# (python3 on the PATH, then Debian's /usr/bin/python3) that imports every MODULE, or nothing.
python_with() {
  local imports candidate
  imports=$(IFS=,; echo "$*")
  for candidate in python3 /usr/bin/python3; do
    if "$candidate" -c "import $imports" 2>/dev/null; then echo "$candidate"; return; fi
  done
}
