#!/usr/bin/env bash
# make fuzz: every fuzz target for FUZZ_SECONDS (default 60) each, with libFuzzer through
# cargo-fuzz (nightly Rust). Seeds come from fuzz/corpus/<target> (committed, small); what
# the run discovers goes to fuzz/.work/corpus/<target> (kept locally, not committed).
# Prints, per target, the executions and the crashes (fuzz/artifacts/<target>/). Exits 1 if
# any target crashed; each crash then becomes a regression test in src/fuzz_targets.rs.
# Built optimised with debug assertions and overflow checks on (-a): an arithmetic overflow
# is a crash.
# TARGETS="request config" runs a subset.
set -u
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-60}
targets=${TARGETS:-"request framing record_batch message_set log_loading producer_snapshot config"}

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "make fuzz: SKIPPED: cargo-fuzz needs a nightly Rust toolchain (rustup toolchain install nightly)" >&2
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked || exit 1
fi
cargo +nightly fuzz build -a || exit 1

mkdir -p .work
summary=.work/summary.tsv
printf 'target\tseconds\texecutions\texec/s\tcorpus\tcrashes\n' > "$summary"
failed=0
for t in $targets; do
  mkdir -p ".work/corpus/$t" "corpus/$t" "artifacts/$t"
  before=$(ls "artifacts/$t" | wc -l)
  cargo +nightly fuzz run -a "$t" ".work/corpus/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 > ".work/$t.log" 2>&1
  rc=$?
  runs=$(grep -oP '^stat::number_of_executed_units:\s*\K[0-9]+' ".work/$t.log" | tail -1)
  runs=${runs:-$(grep -oP '^Done \K[0-9]+' ".work/$t.log" | tail -1)}
  corpus=$(ls ".work/corpus/$t" | wc -l)
  crashes=$(( $(ls "artifacts/$t" | wc -l) - before ))
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes="failed (rc $rc)"; fi
  [ "$crashes" != 0 ] && failed=1
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$seconds" "${runs:-?}" \
    "$(( ${runs:-0} / seconds ))" "$corpus" "$crashes" >> "$summary"
  echo "$t: ${runs:-?} executions in ${seconds} s, crashes: $crashes (log: fuzz/.work/$t.log)"
done
column -t -s $'\t' "$summary"
exit $failed
