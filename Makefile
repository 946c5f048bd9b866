# Spillway. `make run` starts the whole product; `make test` passes every test.
# Both set up what they need (Postgres from Debian, stripe-mock, promtool, Jaeger) idempotently.

GO ?= go
BIN := bin/spillway
TEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: setup build run stop test screenshots fuzz bench chaos generate clean

setup:
	@bash scripts/setup.sh

build:
	$(GO) build -o $(BIN) ./cmd/spillway

# Starts the local Postgres under .data/ when DATABASE_URL is unset, migrates,
# seeds the demo catalog (only the products missing from it), and serves the
# API, the workers and the simulator (Ctrl-C stops them; `make stop` stops
# the local Postgres). TRACING=1 also starts Jaeger on loopback, prints its
# UI's address and sends the traces there (scripts/with-jaeger.sh).
TRACING ?=
run: setup build
	./$(BIN) seed
	@if [ -n "$(TRACING)" ] && [ "$(TRACING)" != 0 ]; then bash scripts/with-jaeger.sh ./$(BIN) serve; else ./$(BIN) serve; fi

stop: build
	./$(BIN) db stop

test: setup
	@bash scripts/setup-browser.sh
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above" && exit 1)
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...

# Regenerates the README's screenshots of the customer's journey: runs the
# shop's Chromium end-to-end tests with SPILLWAY_SCREENSHOTS set, which
# saves each state under web/shop/testdata/screenshots/ (a plain test run
# writes nothing).
screenshots: setup
	@bash scripts/setup-browser.sh
	SPILLWAY_SCREENSHOTS=1 $(GO) test -count=1 -timeout 10m -run E2E ./web/shop/

# Runs each fuzz target for a short while (go test runs one target at a time).
FUZZTIME ?= 20s
fuzz:
	$(GO) test ./app -run '^$$' -fuzz FuzzParsePaymentRequest -fuzztime $(FUZZTIME)
	$(GO) test ./app -run '^$$' -fuzz FuzzParseOrderRequest -fuzztime $(FUZZTIME)
	$(GO) test ./app/sim -run '^$$' -fuzz FuzzChargeRequest -fuzztime $(FUZZTIME)
	$(GO) test ./app/sim -run '^$$' -fuzz FuzzControlPatch -fuzztime $(FUZZTIME)
	$(GO) test ./app/sim -run '^$$' -fuzz FuzzListQuery -fuzztime $(FUZZTIME)
	$(GO) test ./app/sim -run '^$$' -fuzz FuzzReservationRequest -fuzztime $(FUZZTIME)
	$(GO) test ./app/sim -run '^$$' -fuzz FuzzStockQuery -fuzztime $(FUZZTIME)
	$(GO) test ./app/provider -run '^$$' -fuzz FuzzDecodeChargeAnswer -fuzztime $(FUZZTIME)
	$(GO) test ./app/provider -run '^$$' -fuzz FuzzDecodeLookupAnswer -fuzztime $(FUZZTIME)
	$(GO) test ./app/provider -run '^$$' -fuzz FuzzDecodeChargePage -fuzztime $(FUZZTIME)
	$(GO) test ./app/provider -run '^$$' -fuzz FuzzDecodeRefundAnswer -fuzztime $(FUZZTIME)
	$(GO) test ./app/provider -run '^$$' -fuzz FuzzDecodeReservationAnswer -fuzztime $(FUZZTIME)
	$(GO) test ./app/provider -run '^$$' -fuzz FuzzDecodeReleaseAnswer -fuzztime $(FUZZTIME)
	$(GO) test ./app/provider -run '^$$' -fuzz FuzzDecodeReservationLookup -fuzztime $(FUZZTIME)
	$(GO) test ./app/provider -run '^$$' -fuzz FuzzDecodeStock -fuzztime $(FUZZTIME)
	$(GO) test ./jobs/notify -run '^$$' -fuzz FuzzParseRetryAfter -fuzztime $(FUZZTIME)
	$(GO) test ./jobs/notify -run '^$$' -fuzz FuzzCheckURL -fuzztime $(FUZZTIME)
	$(GO) test ./web/shop -run '^$$' -fuzz FuzzParseCheckout -fuzztime $(FUZZTIME)

# Regenerates templ's Go code (committed; run after editing a .templ file).
# Without templ's version comment: it sits right above the package clause,
# so `go doc` would open the package's documentation with it.
generate:
	$(GO) tool templ generate -include-version=false

clean:
	rm -rf bin

# Measures Spillway against this machine's ceilings (pgbench, a minimal
# server, River's no-op rate) in one run of a few minutes; prints a table of
# ratios and writes it as JSON to BENCH_OUT (default .data/bench/latest.json).
# It reports and never fails on a number. A command of its own, not part of
# the product: it builds bin/spillway and runs it as a user would;
# `go run ./cmd/spillway-bench -h`.
bench: setup
	$(GO) run ./cmd/spillway-bench

# Injects faults through Toxiproxy (Postgres, provider, inventory), SIGKILLs
# an instance, restarts Postgres and steps a clock, each scenario under
# load for a few seconds; prints a table (acknowledged, lost, duplicated,
# p99, time to recover) and writes it as JSON to CHAOS_OUT (default
# .data/chaos/latest.json). Fails when a row lost or duplicated anything.
# Minutes; not part of `make test`. `go run ./cmd/spillway-chaos -h`.
chaos: setup
	$(GO) run ./cmd/spillway-chaos
