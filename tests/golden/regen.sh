#!/bin/sh
# Regenerates every golden case's pcaps (send.pcap, expect.pcap, expect_kernel.pcap) from its
# gen.py. Needs the system Python with scapy (/usr/bin/python3), not a virtualenv's.
# Usage: tests/golden/regen.sh [case folder name...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}
if [ "$#" -eq 0 ]; then
  set -- $(cd "$here/cases" && ls -d */ | tr -d /)
fi
for c in "$@"; do
  echo "regen $c"
  (cd "$here/cases/$c" && "$python" gen.py)
done
