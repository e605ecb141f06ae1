# Bulwark build, test and lab targets. See README.md.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build run demo test unit-test fuzz deps vet clean bench bench-rpz bench-transport soak

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/bulwark ./cmd/bulwark

# run builds Bulwark and serves on the embedded default: 127.0.0.1 and ::1
# port 5300, resolving from the real root servers.
run: build
	bin/bulwark serve

# demo replays the lab's query list through Bulwark with dnsperf.
LAB ?= $(CURDIR)/lab-run
demo: deps
	scripts/demo.sh $(LAB)

vet:
	$(GO) vet ./...

# deps installs the Debian packages the integration tests drive.
deps:
	@./lab/deps.sh

# test runs every test, unit and integration, with the race detector. The
# lab-based packages run one at a time: each brings up its own lab on the
# same addresses.
test: deps build
	$(GO) vet ./...
	$(GO) test -race ./internal/... ./cmd/... ./lab/... ./test/labkit/...
	$(GO) test -race -count=1 -p 1 -timeout 30m ./test/oracle/ ./test/integration/

# fuzz runs every fuzz target for FUZZTIME each.
FUZZTIME ?= 10s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

# bench measures Bulwark beside Unbound, Knot Resolver, PowerDNS Recursor
# and BIND on the lab: cached answers, cold resolution, a random-subdomain
# attack mix and memory; see docs/benchmarks.md. It is not part of test.
bench:
	scripts/bench.sh

# bench-rpz loads a generated RPZ of RPZ_NAMES names (default 10,000,000)
# in Bulwark, Unbound and Knot Resolver, one at a time, and prints a
# comparison. It is not part of test; see docs/benchmarks.md.
bench-rpz:
	scripts/bench-rpz.sh

# bench-transport measures cached answers over DoT and DoH in Bulwark,
# Unbound and Knot Resolver against the lab; see docs/benchmarks.md. It is
# not part of test.
bench-transport:
	scripts/bench-transport.sh

# soak runs the fault-and-attack suite in a network namespace of its own,
# as root: SOAK_SECONDS per row (default 30), SOAK_SCALE=ci for the short
# run of CI, SOAK_STRICT=1 to fail when a row misses its goals. See
# docs/reliability.md. It is not part of test.
SOAK_SCALE ?= full
soak:
	SOAK_SCALE=$(SOAK_SCALE) scripts/soak.sh $(SOAK_LAB)

unit-test:
	$(GO) test -race ./internal/... ./cmd/... ./lab/... ./test/labkit/...

clean:
	rm -rf bin

include lab/lab.mk
