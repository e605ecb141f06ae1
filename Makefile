# Bulwark build, test and lab targets. See README.md.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test unit-test integration-test deps vet clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/bulwark ./cmd/bulwark

vet:
	$(GO) vet ./...

# deps installs the Debian packages the integration tests drive.
deps:
	@./lab/deps.sh

# test runs every test, unit and integration, with the race detector.
test: deps build
	$(GO) vet ./...
	$(GO) test -race -timeout 30m ./...

unit-test:
	$(GO) test -race ./internal/... ./cmd/...

clean:
	rm -rf bin

include lab/lab.mk
