#!/usr/bin/env bash
# make fuzz-corpus: merges what `make fuzz` discovered (fuzz/.work/corpus/<target>) into the
# committed seeds (fuzz/corpus/<target>), keeping only inputs that add coverage, each at most
# 4 KiB and at most 100 per target, so the committed corpus stays small.
set -eu
cd "$(dirname "$0")"
for dir in .work/corpus/*/; do
  t=$(basename "$dir")
  mkdir -p "corpus/$t" ".work/merged/$t"
  rm -f ".work/merged/$t"/*
  cargo +nightly fuzz run -a "$t" ".work/merged/$t" "corpus/$t" "$dir" -- -merge=1 -max_len=4096 \
    > ".work/$t.merge.log" 2>&1
  rm -f "corpus/$t"/*
  # At most 100 seeds per target, the smallest: enough to start every API and codec path,
  # small enough to commit; the full corpus stays in fuzz/.work.
  ls -S -r ".work/merged/$t" | head -100 | while read -r f; do cp ".work/merged/$t/$f" "corpus/$t/"; done
  echo "$t: $(ls "corpus/$t" | wc -l) seeds, $(du -sk "corpus/$t" | cut -f1) KiB"
done
