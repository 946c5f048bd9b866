#!/usr/bin/env bash
# Installs what `make run` and `make test` need on a Debian-like machine:
# PostgreSQL server binaries (for the project-local cluster db/localpg
# manages under .data/postgres), PgBouncer, stripe-mock, promtool, Jaeger
# and toxiproxy-server (under .data/bin).
#
# Idempotent and fast when everything is present: it only touches the
# network (apt, Go module proxy) for things that are missing.
set -euo pipefail

STRIPE_MOCK_VERSION=v0.203.0
# promtool checks and unit-tests testdata/prometheus/alerts.yml (go test
# ./web/ runs it); the first build takes a few minutes.
PROMETHEUS_VERSION=v0.316.0
# Jaeger receives the trace test's spans (go test ./cmd/spillway/service/)
# and `TRACING=1 make run`'s; v1.75.0 is the approved release (v1.76.0 is
# served but is not one). The first build takes a few minutes.
JAEGER_VERSION=v1.75.0
# toxiproxy-server injects the faults of `make chaos` (cmd/spillway-chaos).
TOXIPROXY_VERSION=v2.5.0

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

apt_updated=
apt_install() {
	# Update the package lists at most once per run; a fresh container has
	# none, and a second update would only cost time.
	if [ -z "$apt_updated" ]; then
		say "apt-get update"
		apt-get update -qq
		apt_updated=1
	fi
	say "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# pg_bindir prints a directory holding initdb, pg_ctl and postgres, looking
# where db/localpg looks: PATH first (symlinks resolved), then Debian's
# /usr/lib/postgresql/<major>/bin, highest major first. Debian does not put
# initdb on PATH, so the second place is the usual hit.
pg_bindir() {
	local d p
	if p="$(command -v initdb 2>/dev/null)"; then
		d="$(dirname "$(readlink -f "$p")")"
		if [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	return 1
}

# --- PostgreSQL server binaries -------------------------------------------
if ! bindir="$(pg_bindir)"; then
	if ! is_root; then
		die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql/*/bin; run this script as root (sudo $0) or install Debian's 'postgresql' package"
	fi
	command -v apt-get >/dev/null || die "initdb not found and apt-get is unavailable; install PostgreSQL server binaries by hand"
	# Debian's package also creates and starts a system cluster on 5432;
	# that is harmless, the project cluster uses its own port (54329).
	apt_install postgresql
	bindir="$(pg_bindir)" || die "installed postgresql but still cannot find initdb"
	say "postgres: installed $("$bindir/pg_ctl" --version | sed 's/^pg_ctl (PostgreSQL) //') in $bindir"
else
	say "postgres: found $("$bindir/pg_ctl" --version | sed 's/^pg_ctl (PostgreSQL) //') in $bindir"
fi

# --- PgBouncer ----------------------------------------------------------------
# The tests run instances through it in transaction mode
# (cmd/spillway/pgbouncer_test.go); db/localpg starts it.
if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then
	say "pgbouncer: found $( (command -v pgbouncer || echo /usr/sbin/pgbouncer) | head -1)"
else
	is_root || die "pgbouncer not found; run this script as root (sudo $0) or install Debian's 'pgbouncer' package"
	command -v apt-get >/dev/null || die "pgbouncer not found and apt-get is unavailable; install PgBouncer 1.18 or newer by hand"
	# Debian's package enables a system service; without systemd it is
	# not started, and the tests start their own on their own ports.
	apt_install pgbouncer
	say "pgbouncer: installed $(/usr/sbin/pgbouncer --version | head -1)"
fi

# initdb and postgres refuse to run as root, so as root db/localpg runs the
# cluster as the 'postgres' OS user. The package creates it; a machine with
# binaries from elsewhere may lack it.
if is_root; then
	if getent passwd postgres >/dev/null; then
		say "postgres user: present (root runs the local cluster as it)"
	else
		useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
		say "postgres user: created"
	fi
	if ! command -v runuser >/dev/null && ! command -v su >/dev/null; then
		die "neither runuser nor su is available to run PostgreSQL as the postgres user"
	fi
fi

# --- stripe-mock -------------------------------------------------------------
bin="$repo/.data/bin"
if [ -x "$bin/stripe-mock" ]; then
	say "stripe-mock: found $bin/stripe-mock"
else
	command -v go >/dev/null || die "go not found; it is needed to build stripe-mock"
	mkdir -p "$bin"
	say "stripe-mock: installing $STRIPE_MOCK_VERSION into $bin"
	GOBIN="$bin" go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION"
fi

# --- promtool ------------------------------------------------------------------
if [ -x "$bin/promtool" ]; then
	say "promtool: found $bin/promtool"
else
	command -v go >/dev/null || die "go not found; it is needed to build promtool"
	mkdir -p "$bin"
	say "promtool: installing $PROMETHEUS_VERSION into $bin (a few minutes the first time)"
	GOBIN="$bin" go install "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
fi

# --- jaeger --------------------------------------------------------------------
if [ -x "$bin/jaeger" ]; then
	say "jaeger: found $bin/jaeger"
else
	command -v go >/dev/null || die "go not found; it is needed to build jaeger"
	mkdir -p "$bin"
	say "jaeger: installing $JAEGER_VERSION into $bin (a few minutes the first time)"
	# Jaeger's go.mod has a replace directive, so `go install module@version`
	# refuses it. It is fetched through the module proxy like any module and
	# built as the main module of its own directory in the module cache,
	# where its replace applies (outside any module: ours is not touched).
	dir="$(cd / && go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	[ -d "$dir" ] || die "could not download github.com/jaegertracing/jaeger@$JAEGER_VERSION"
	(cd "$dir" && GOFLAGS=-mod=mod go build -o "$bin/jaeger.tmp" ./cmd/jaeger) || die "could not build jaeger"
	mv "$bin/jaeger.tmp" "$bin/jaeger"
fi

# --- toxiproxy-server ------------------------------------------------------------
# The module's command is cmd/server, which go install would name "server";
# it is built into a scratch GOBIN and renamed, so .data/bin says what it is.
if [ -x "$bin/toxiproxy-server" ]; then
	say "toxiproxy-server: found $bin/toxiproxy-server"
else
	command -v go >/dev/null || die "go not found; it is needed to build toxiproxy-server"
	mkdir -p "$bin"
	say "toxiproxy-server: installing $TOXIPROXY_VERSION into $bin"
	tox_tmp="$(mktemp -d)"
	GOBIN="$tox_tmp" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
	mv "$tox_tmp/server" "$bin/toxiproxy-server"
	rmdir "$tox_tmp"
fi
