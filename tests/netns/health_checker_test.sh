#!/usr/bin/env bash
# The health checker against real servers in a network namespace. Two namespaces joined by a veth
# pair: the "node" (10.202.0.1, fd00:202::1), where lb_health_probe runs with its probes bound to
# the veth as lbnode binds them to lb0, and the "backend" (10.202.0.2, fd00:202::2) running
# Python's http.server on 8080 (dual stack) and a TCP accept-and-close server on 9000.
# Asserts, with interval 500 ms, timeout 300 ms, rise 2, fall 3:
#   - first verdicts: all three targets (HTTP over IPv4 and IPv6, TCP) healthy;
#   - HTTP server killed: both HTTP targets go down ("connect: Connection refused") within
#     (fall-1)..fall intervals of the kill; the TCP target stays up;
#   - HTTP server restarted: both come back within (rise-1)..rise intervals of it listening;
#   - HTTP server frozen (SIGSTOP; the kernel still completes connections): down on timeouts,
#     up again after SIGCONT;
#   - TCP server killed: the TCP target goes down.
# Prints each detection time. Usage: health_checker_test.sh <path to lb_health_probe>
# (KEEP_WORK=1 keeps the logs: probe output, HTTP server log.)
set -euo pipefail
PROBE=$(realpath "$1")
PY=/usr/bin/python3  # Debian's interpreter (the one on PATH may be another)
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (network namespaces)"; exit 77; fi
tag="lbhc$$"
ns_n="${tag}n" ns_b="${tag}b"
work=$(mktemp -d)
pids=()
interval=500 timeout=300 rise=2 fall=3

cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for n in "$ns_n" "$ns_b"; do ip netns del "$n" 2>/dev/null || true; done
  [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

forget() {
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

fail() {
  echo "FAIL: $*"
  echo "--- probe output"; cat "$work/probe.log" 2>/dev/null || true
  echo "--- HTTP server log"; tail -20 "$work/http.log" 2>/dev/null || true
  exit 1
}

# Waits up to $1 tenths of a second for command "${@:2}" to succeed.
wait_for() {
  local tries=$1; shift
  for _ in $(seq 1 "$tries"); do "$@" && return 0; sleep 0.1; done
  return 1
}

now() { date +%s.%N; }
# seconds_between <t0> <t1>
seconds_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# in_range <x> <lo> <hi>
in_range() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }
# event_time <key> <old->new> [after]: the time of the first such event later than `after`.
event_time() {
  awk -v pat="event key=$1 $2 " -v after="${3:-0}" \
    'index($0, pat) && $1 > after { print $1; found = 1; exit } END { exit !found }' \
    "$work/probe.log"
}
has_event() { event_time "$@" >/dev/null; }
event_reason() {
  grep -F "event key=$1 $2 " "$work/probe.log" | tail -1 | sed 's/.*reason=//'
}

ip netns add "$ns_n"
ip netns add "$ns_b"
ip -n "$ns_n" link add hc0 type veth peer name hc1 netns "$ns_b"
for pair in "$ns_n:hc0:1" "$ns_b:hc1:2"; do
  IFS=: read -r ns ifc host <<<"$pair"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip -n "$ns" addr add "10.202.0.$host/24" dev "$ifc"
  ip -n "$ns" addr add "fd00:202::$host/64" dev "$ifc" nodad
  ip -n "$ns" link set "$ifc" up
  ip -n "$ns" link set lo up
done

mkdir -p "$work/www" && echo ok > "$work/www/index.html"
http_pid=
start_http() {
  ip netns exec "$ns_b" "$PY" -m http.server 8080 --bind :: --directory "$work/www" \
    >>"$work/http.log" 2>&1 &
  http_pid=$!
  pids+=("$http_pid")
  wait_for 100 http_listening || fail "HTTP server not listening"
}
http_listening() { ip netns exec "$ns_b" ss -Hltn "( sport = :8080 )" | grep -q .; }
stop_http() {
  kill "$http_pid"
  wait "$http_pid" 2>/dev/null || true
  forget "$http_pid"
}

start_http
ip netns exec "$ns_b" "$PY" -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 9000))
s.listen(64)
while True:
    c, _ = s.accept()
    c.close()
' >"$work/tcp.log" 2>&1 &
tcp_pid=$!
pids+=("$tcp_pid")
wait_for 100 bash -c "ip netns exec $ns_b ss -Hltn '( sport = :9000 )' | grep -q ." ||
  fail "TCP server not listening"

ip netns exec "$ns_n" "$PROBE" --bind hc0 --interval_ms "$interval" --timeout_ms "$timeout" \
  --rise "$rise" --fall "$fall" -t http4,http,10.202.0.2,8080,/index.html \
  -t http6,http,fd00:202::2,8080,/index.html -t tcp4,tcp,10.202.0.2,9000 >"$work/probe.log" 2>&1 &
probe_pid=$!
pids+=("$probe_pid")

# First verdicts: at most one interval plus the timeout after start.
wait_for 50 grep -q all_checked_once "$work/probe.log" || fail "no first verdicts within 5 s"
for k in http4 http6 tcp4; do
  wait_for 10 has_event "$k" "unknown->healthy" || fail "$k: first verdict is not healthy"
done
echo "first verdicts: $(grep -o 'all_checked_once.*' "$work/probe.log")"

# Killed: refused connections. Down after `fall` failed probes, the first within one interval.
t_kill=$(now)
stop_http
for k in http4 http6; do
  wait_for 50 has_event "$k" "healthy->unhealthy" || fail "$k: not down within 5 s of the kill"
  d=$(seconds_between "$t_kill" "$(event_time "$k" "healthy->unhealthy")")
  echo "$k: down detected after $d s (interval $interval ms, fall $fall): $(event_reason "$k" "healthy->unhealthy")"
  in_range "$d" 0.9 1.7 || fail "$k: down after $d s, want $(( (fall - 1) * interval ))..$(( fall * interval )) ms"
done
event_reason http4 "healthy->unhealthy" | grep -q "connect: Connection refused (3 consecutive failures)" ||
  fail "http4: unexpected reason"

# Restarted: up after `rise` good probes.
start_http
t_up=$(now)
for k in http4 http6; do
  wait_for 50 has_event "$k" "unhealthy->healthy" || fail "$k: not up within 5 s of the restart"
  d=$(seconds_between "$t_up" "$(event_time "$k" "unhealthy->healthy")")
  echo "$k: up detected after $d s (interval $interval ms, rise $rise): $(event_reason "$k" "unhealthy->healthy")"
  in_range "$d" 0.4 1.2 || fail "$k: up after $d s, want $(( (rise - 1) * interval ))..$(( rise * interval )) ms"
done

# Frozen: the kernel completes connections into the backlog, nobody answers: timeouts.
t_freeze=$(now)
kill -STOP "$http_pid"
wait_for 50 has_event http4 "healthy->unhealthy" "$(event_time http4 "unhealthy->healthy")" ||
  fail "http4: not down within 5 s of the freeze"
d=$(seconds_between "$t_freeze" "$(event_time http4 "healthy->unhealthy" "$t_freeze")")
echo "http4: hung server detected after $d s: $(event_reason http4 "healthy->unhealthy")"
event_reason http4 "healthy->unhealthy" | grep -q "timeout after $timeout ms awaiting the HTTP status" ||
  fail "http4: a frozen server should time out"
t_thaw=$(now)
kill -CONT "$http_pid"
wait_for 50 has_event http4 "unhealthy->healthy" "$t_thaw" || fail "http4: not up after SIGCONT"
echo "http4: up after thaw in $(seconds_between "$t_thaw" "$(event_time http4 "unhealthy->healthy" "$t_thaw")") s"

has_event tcp4 "healthy->unhealthy" && fail "tcp4 went down while only HTTP was stopped"
t_kill=$(now)
kill "$tcp_pid"; wait "$tcp_pid" 2>/dev/null || true; forget "$tcp_pid"
wait_for 50 has_event tcp4 "healthy->unhealthy" || fail "tcp4: not down within 5 s of the kill"
echo "tcp4: down detected after $(seconds_between "$t_kill" "$(event_time tcp4 "healthy->unhealthy")") s (interval $interval ms, fall $fall)"

kill "$probe_pid"; wait "$probe_pid" || fail "lb_health_probe exited with $?"; forget "$probe_pid"
grep ' status key=' "$work/probe.log"
echo "PASS"
