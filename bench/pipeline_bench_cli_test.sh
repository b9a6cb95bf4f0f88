#!/bin/bash
# What a user of pipeline_bench sees: --help tells the usage and exits 0; a bad count, an unknown
# option, an extra argument or a filter that matches no row exits 2 with a message; a short run
# of one row prints that row with a positive ns/packet and Mpps, and so does the row of the
# benchmark's own burst refill.
# Usage: pipeline_bench_cli_test.sh <path to pipeline_bench>
set -u
bin=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail=0
check() {  # check <what> <expected rc> <pattern in output> <args...>
  local what=$1 want=$2 pat=$3
  shift 3
  timeout 120 "$bin" "$@" >"$out" 2>&1
  local rc=$?
  if [[ $rc -ne $want ]]; then
    echo "FAIL $what: exit $rc, expected $want"; sed 's/^/  | /' "$out" | head -20; fail=1
  elif ! grep -qE -- "$pat" "$out"; then
    echo "FAIL $what: output lacks /$pat/"; sed 's/^/  | /' "$out" | head -20; fail=1
  else
    echo "ok   $what"
  fi
}
check "--help" 0 '^Usage: pipeline_bench .*--huge' --help
check "count not a number" 2 "packets per row must be a number.*'12x'" 12x
check "count zero" 2 "packets per row must be a number.*'0'" 0
check "unknown option" 2 "unknown option '--fast'" --fast
check "extra argument" 2 "unexpected argument 'more'" 3200 "1 flow" more
check "filter matching no row" 2 "no row matches the filter 'no such row'" 3200 "no such row"
# Short real runs: the row, then ns/packet and Mpps, both positive numbers.
# The harness's own share is a row too, with figures, even though it forwards nothing.
check "refill row" 0 '^targets: burst refill alone \(in every row\) +[0-9]+\.[0-9] +[0-9]+\.[0-9]*[1-9]' \
  3200 "burst refill alone"
check "one row" 0 '^targets: established, 1 flow +[0-9]*[1-9][0-9]*\.[0-9] +[0-9]+\.[0-9]*[1-9]' \
  3200 "targets: established, 1 flow"
# The same run's output also gives the table's bytes per entry.
if grep -qE 'connection table: [1-9][0-9]* bytes per entry' "$out"; then
  echo "ok   bytes per entry"
else
  echo "FAIL bytes per entry: output lacks it"; fail=1
fi
exit $fail
