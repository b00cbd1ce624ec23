#!/usr/bin/env bash
# Reproduces the HTTP-level performance table: server CPU time per request,
# on this machine, over keep-alive HTTPS on loopback, beside one raw ECDSA
# P-256 verification timed by the load generator in the same run.
#
# It builds senderbound, makes a test PKI, starts serve-issuer and one
# serve-resource per case, and runs 'senderbound load --server-pid' against
# each in turn:
#
#   dpop-cached      DPoP, the verified token cached (the default)
#   dpop-uncached    DPoP, --token-cache 0: the token's signature every time
#   mtls             certificate-bound token over keep-alive mTLS
#   baseline         GET /baseline on the same mTLS server, no check at all
#   dpop-redis       DPoP, token cached, replay store in a local redis-server
#   nonce-redis      the same with resource-server nonces (--require-nonce)
#   echo-nonce-redis examples/echo-service (Echo, nonces, replay store in
#                    Redis): the same checks through the Echo adapter
#   (the last three are skipped when redis-server is not on PATH)
#
# Environment: DURATION (per case, default 10s), WORKERS (default 8),
# PROFILE_DIR (when set, each server writes a CPU profile there, for
# 'go tool pprof'), JSON_DIR (when set, each load report is kept there).
# Numbers vary from run to run on a shared machine; compare ratios, and run
# the script more than once.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
WORKERS=${WORKERS:-8}

work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

sb="$work/senderbound"
go build -o "$sb" ./cmd/senderbound
"$sb" ca create --out "$work/ca" >/dev/null
"$sb" cert issue --ca "$work/ca" --cn 127.0.0.1 --ip 127.0.0.1 --server --out "$work/server" >/dev/null
"$sb" cert issue --ca "$work/ca" --cn bench-mtls --client --out "$work/client" >/dev/null
ca="$work/ca/ca.pem"
tls=(--tls-cert "$work/server/cert.pem" --tls-key "$work/server/key.pem" --client-ca "$ca")
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && printf '%s' "$secret" >"$work/secret")

# start NAME PROGRAM ARGS...: runs PROGRAM ARGS in the background and waits
# for its "listening on URL" line (standard output or error); sets url and
# pid.
start() {
	local name=$1 line=""
	shift
	"$@" >"$work/$name.out" 2>"$work/$name.err" &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 100); do
		line=$(cat "$work/$name.out" "$work/$name.err" 2>/dev/null | grep -m1 -o 'listening on https\{0,1\}://[^ ]*' || true)
		[ -n "$line" ] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name exited: $(cat "$work/$name.err")" >&2
			exit 1
		fi
		sleep 0.1
	done
	[ -n "$line" ] || { echo "$name did not start listening" >&2; exit 1; }
	url=${line#listening on }
}

# stop PID: ends a server (SIGTERM: it shuts down and writes its profile).
stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

start issuer "$sb" serve-issuer --addr 127.0.0.1:0 --ephemeral-key --token-ttl 1h --scope read \
	--client "bench:@$work/secret" --mtls-client bench-mtls:CN=bench-mtls "${tls[@]}"
as=$url

# free_port prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

redis_url=""
if command -v redis-server >/dev/null 2>&1; then
	port=$(free_port)
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --loglevel warning >"$work/redis.log" 2>&1 &
	pids+=("$!")
	for _ in $(seq 50); do
		redis-cli -p "$port" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	redis_url="redis://127.0.0.1:$port/0"
fi

# run CASE RS_FLAGS -- LOAD_FLAGS: one serve-resource, one load run; the
# report's JSON goes to $work/CASE.json.
run() {
	local name=$1 rs_flags=()
	shift
	while [ "$1" != "--" ]; do rs_flags+=("$1"); shift; done
	shift
	if [ -n "${PROFILE_DIR:-}" ]; then
		mkdir -p "$PROFILE_DIR"
		rs_flags+=(--cpu-profile "$PROFILE_DIR/$name.pprof")
	fi
	start "rs-$name" "$sb" serve-resource --addr 127.0.0.1:0 --issuer "$as" --ca-file "$ca" --baseline "${tls[@]}" "${rs_flags[@]}"
	load "$name" "$url" "$pid" "$@"
}

# load CASE SERVER_URL SERVER_PID LOAD_FLAGS: one load run against a
# started server, which it stops afterwards.
load() {
	local name=$1 rs=$2 rs_pid=$3
	shift 3
	"$sb" load --quiet --json --ca-file "$ca" --duration "$DURATION" -c "$WORKERS" \
		--server-pid "$rs_pid" "${@/@RS@/$rs}" <"$work/secret" >"$work/$name.json"
	stop "$rs_pid"
	if [ -n "${JSON_DIR:-}" ]; then
		mkdir -p "$JSON_DIR"
		cp "$work/$name.json" "$JSON_DIR/"
	fi
}

dpop=(--mode dpop --token-endpoint "$as/token" --client-id bench --client-secret -)
mtls=(--cert "$work/client/cert.pem" --key "$work/client/key.pem")

run dpop-cached -- "${dpop[@]}" --url @RS@/resource
run dpop-uncached --token-cache 0 -- "${dpop[@]}" --url @RS@/resource
run mtls -- --mode mtls "${mtls[@]}" --token-endpoint "$as/token" --client-id bench-mtls --url @RS@/resource
run baseline -- --mode none "${mtls[@]}" --url @RS@/baseline
if [ -n "$redis_url" ]; then
	run dpop-redis --redis "$redis_url" -- "${dpop[@]}" --url @RS@/resource
	run nonce-redis --redis "$redis_url" --require-nonce -- "${dpop[@]}" --url @RS@/resource
	go build -o "$work/echo-service" ./examples/echo-service
	port=$(free_port)
	NONCE_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') start echo "$work/echo-service" \
		--addr "127.0.0.1:$port" --issuer "$as" --ca "$ca" --redis "$redis_url" \
		--tls-cert "$work/server/cert.pem" --tls-key "$work/server/key.pem"
	load echo-nonce-redis "$url" "$pid" "${dpop[@]}" --scope read --url @RS@/api/me
fi

# The table: server CPU per request and its ratio to one raw verify from
# the same run (per two for the uncached token); "added" is the same ratio
# for the CPU above the unprotected baseline (HTTPS, routing, the answer),
# that is the cost of the check alone. The goals are those of the
# HTTP-level performance section.
base=0
if [ -f "$work/baseline.json" ]; then base=$(jq '.server.cpu_per_request_us' "$work/baseline.json"); fi
row() { # case goal-text divisor
	local f="$work/$1.json"
	[ -f "$f" ] || return 0
	jq -r --arg c "$1" --arg g "$2" --argjson d "$3" --argjson base "$base" '
		[$c, (.requests_per_s|floor|tostring),
		 (.server.cpu_per_request_us*10|round/10|tostring),
		 (.server.raw_es256_verify_us*10|round/10|tostring),
		 ((.server.per_raw_verify/$d)*100|round/100|tostring),
		 (((.server.cpu_per_request_us-$base)/.server.raw_es256_verify_us/$d)*100|round/100|tostring), $g,
		 ((.outcomes|map(select(.status!=200).count)|add // 0)|tostring)] | @tsv' "$f"
}
{
	printf 'case\treq/s\tserver CPU/req (us)\traw verify (us)\tratio\tadded\tgoal\tnon-200\n'
	row dpop-cached "<= 1.3 x 1 verify" 1
	row dpop-uncached "<= 1.25 x 2 verifies" 2
	row mtls "vs baseline below" 1
	row baseline "-" 1
	row dpop-redis "(round trip off the CPU path)" 1
	row nonce-redis "-" 1
	row echo-nonce-redis "same as nonce-redis" 1
} | column -t -s $'\t'
if [ -f "$work/mtls.json" ] && [ -f "$work/baseline.json" ]; then
	jq -rn --slurpfile m "$work/mtls.json" --slurpfile b "$work/baseline.json" \
		'"mTLS-bound token / unprotected handler, CPU per request: \(($m[0].server.cpu_per_request_us / $b[0].server.cpu_per_request_us)*100|round/100) (goal <= 1.10)"'
fi
echo "workers $WORKERS, $DURATION per case, $(nproc) cores, loopback keep-alive HTTPS; the generator shares the cores with the server."
