#!/usr/bin/env bash
# Runs a command (`make run`'s `spillway serve`) with traces going to a
# Jaeger started here on loopback, and stops that Jaeger when the command
# ends. `TRACING=1 make run` uses it. Jaeger keeps spans in memory only:
# they are gone when it stops.
#
#   JAEGER_UI_ADDR    the UI and query API   (default 127.0.0.1:16686)
#   JAEGER_OTLP_ADDR  the OTLP/HTTP receiver (default 127.0.0.1:4318)
#   JAEGER_GRPC_ADDR  the query gRPC API     (default 127.0.0.1:16685)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${JAEGER_BIN:-$repo/.data/bin/jaeger}"
[ -x "$bin" ] || { echo "with-jaeger: $bin not found; run scripts/setup.sh" >&2; exit 1; }

ui="${JAEGER_UI_ADDR:-127.0.0.1:16686}"
otlp="${JAEGER_OTLP_ADDR:-127.0.0.1:4318}"
grpc="${JAEGER_GRPC_ADDR:-127.0.0.1:16685}"
for a in "$ui" "$otlp" "$grpc"; do
	case "$a" in
	127.0.0.1:* | localhost:*) ;;
	*) echo "with-jaeger: $a is not a loopback address; Jaeger listens on loopback only" >&2; exit 1 ;;
	esac
done

log="$repo/.data/jaeger.log"
mkdir -p "$repo/.data"
# A session of its own: Ctrl-C reaches the command, which flushes its last
# spans to a Jaeger still running, and the trap below stops Jaeger after.
JAEGER_OTLP_HTTP_ADDR="$otlp" JAEGER_QUERY_ADDR="$ui" JAEGER_QUERY_GRPC_ADDR="$grpc" \
	setsid "$bin" --config "file:$repo/testdata/jaeger/config.yaml" >"$log" 2>&1 &
jaeger=$!
trap 'kill "$jaeger" 2>/dev/null; wait "$jaeger" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
	if curl -fsS "http://$ui/api/services" >/dev/null 2>&1; then
		break
	fi
	kill -0 "$jaeger" 2>/dev/null || { echo "with-jaeger: jaeger exited; see $log" >&2; cat "$log" >&2; exit 1; }
	sleep 0.1
done
echo "jaeger UI on http://$ui/ (traces of service ${OTEL_SERVICE_NAME:-spillway}; log in $log)"

export OTEL_EXPORTER_OTLP_ENDPOINT="http://$otlp"
export LOG_FORMAT="${LOG_FORMAT:-json}"
"$@"
