# wail — the two commands a newcomer needs are `go run ./cmd/wail demo` and
# `make test`. Everything else here is for developers.

GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
BUF       := $(GOBIN)/buf
BUF_VERSION                 := v1.75.0
PROTOC_GEN_GO_VERSION       := v1.36.12
PROTOC_GEN_CONNECT_VERSION  := v1.21.1
STATICCHECK_VERSION         := v0.8.2
TESTFLAGS ?=

.PHONY: all build test test-short services race vet fmt fmt-check lint staticcheck proto bench bench-vs-debezium fuzz mutate mutate-ci clean

all: build

build:
	$(GO) build -o bin/wail ./cmd/wail

# All tests. Integration tests against the real databases run when they
# are reachable (scripts/services.sh up starts them; CI does) and skip with
# a message otherwise, except under CI=true, where they fail; the skipped
# ones are listed at the end (package servicetest). Packages run one at a
# time (-p 1): some tests pause the replica or restart a database. A
# package may take up to 30 minutes (-timeout; go test's default, 10, is
# too short for e2etest with a Cassandra node restart on a busy machine).
SKIPPED := $(CURDIR)/.skipped-tests
test:
	@rm -f $(SKIPPED)
	@WAIL_SKIPPED=$(SKIPPED) $(GO) test -race -count=1 -p 1 -timeout 30m $(TESTFLAGS) ./...; rc=$$?; \
	sh scripts/skipped.sh $(SKIPPED); rm -f $(SKIPPED); exit $$rc

# The same, with the race detector (make test already uses it).
race: test

# Start PostgreSQL (primary + streaming replica), MariaDB, a Kafka broker
# and a 3-node Cassandra cluster on loopback, for the integration tests.
services:
	bash scripts/services.sh up
	bash scripts/kafka.sh up
	bash scripts/cassandra.sh up

test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt wants to rewrite:"; echo "$$out"; exit 1; fi

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

lint: fmt-check vet staticcheck

# Regenerate api/wail/v1 from wail.proto (generated code is committed).
proto:
	$(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install connectrpc.com/connect/cmd/protoc-gen-connect-go@$(PROTOC_GEN_CONNECT_VERSION)
	PATH="$(GOBIN):$$PATH" $(BUF) lint
	PATH="$(GOBIN):$$PATH" $(BUF) generate

bench:
	$(GO) test -run='^$$' -bench=. -benchtime=2s ./internal/intentlog/embedded/ ./internal/store/pebble/ ./internal/resolver/

# wail and Debezium Server side by side on the same PostgreSQL and Kafka, the
# same open-loop load, one consumer (docs/benchmarks.md, "wail vs Debezium").
# About 15 minutes; needs root (it starts the services) and Maven Central.
# Not part of `make test`. ARGS go to `wail bench vs-debezium`.
bench-vs-debezium:
	bash bench/debezium/run.sh $(ARGS)

# Mutation testing of the core packages (scripts/mutate): per package, the
# share of one-line code changes the tests catch; survivors must be killed
# by a test or judged equivalent in scripts/mutate/judged.txt. PKGS limits
# it to some packages (e.g. PKGS=internal/hlc), MUTATE_FLAGS passes flags
# (e.g. MUTATE_FLAGS='-workers 1 -files core'). The whole run takes hours
# on 2 cores: run it, for the package changed, before merging a change to
# a core package.
PKGS ?=
MUTATE_FLAGS ?=
mutate:
	$(GO) run ./scripts/mutate $(MUTATE_FLAGS) $(PKGS)

# The part of `make mutate` that CI runs (.ci/run): the core packages
# whose mutants take minutes, not the hours of the whole run.
MUTATE_CI_PKGS := internal/hlc internal/proxy
mutate-ci:
	$(GO) run ./scripts/mutate $(MUTATE_FLAGS) $(MUTATE_CI_PKGS)

# Short fuzzing session of every decoder of bytes from disk or network.
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodeBatch -fuzztime=30s -fuzzminimizetime=1s ./internal/intentlog/embedded/
	$(GO) test -run='^$$' -fuzz=FuzzTornTail -fuzztime=15s -fuzzminimizetime=1s ./internal/intentlog/embedded/
	$(GO) test -run='^$$' -fuzz='^FuzzUnmarshalIntent$$' -fuzztime=15s -fuzzminimizetime=1s ./internal/intent/
	$(GO) test -run='^$$' -fuzz='^FuzzUnmarshalEvent$$' -fuzztime=15s -fuzzminimizetime=1s ./internal/intent/
	$(GO) test -run='^$$' -fuzz='^FuzzUnmarshalIntentLikeProto$$' -fuzztime=15s -fuzzminimizetime=1s ./internal/intent/
	$(GO) test -run='^$$' -fuzz='^FuzzUnmarshalEventLikeProto$$' -fuzztime=15s -fuzzminimizetime=1s ./internal/intent/
	$(GO) test -run='^$$' -fuzz='^FuzzEventMarshalLikeProto$$' -fuzztime=10s -fuzzminimizetime=1s ./internal/intent/
	$(GO) test -run='^$$' -fuzz='^FuzzMarshalLikeProto$$' -fuzztime=10s -fuzzminimizetime=1s ./internal/intent/
	$(GO) test -run='^$$' -fuzz='^FuzzScanEvent$$' -fuzztime=15s -fuzzminimizetime=1s ./internal/intent/
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=10s -fuzzminimizetime=1s ./internal/dlq/
	$(GO) test -run='^$$' -fuzz=FuzzFold -fuzztime=10s -fuzzminimizetime=1s ./internal/dlq/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeWail -fuzztime=10s -fuzzminimizetime=1s ./internal/bench/versus/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeDebezium -fuzztime=10s -fuzzminimizetime=1s ./internal/bench/versus/
	$(GO) test -run='^$$' -fuzz=FuzzEachEvent -fuzztime=10s -fuzzminimizetime=1s ./internal/bench/
	$(GO) test -run='^$$' -fuzz=FuzzStrictJSON -fuzztime=10s -fuzzminimizetime=1s ./internal/api/
	$(GO) test -run='^$$' -fuzz=FuzzCountJSONMutations -fuzztime=10s -fuzzminimizetime=1s ./internal/api/
	$(GO) test -run='^$$' -fuzz=FuzzParseCassandraDuration -fuzztime=5s -fuzzminimizetime=1s ./internal/store/cassandra/
	$(GO) test -run='^$$' -fuzz=FuzzParseReplication -fuzztime=5s -fuzzminimizetime=1s ./internal/store/cassandra/
	$(GO) test -run='^$$' -fuzz='^FuzzCompile$$' -fuzztime=10s -fuzzminimizetime=1s ./internal/schema/
	$(GO) test -run='^$$' -fuzz='^FuzzCompileSerialized$$' -fuzztime=10s -fuzzminimizetime=1s ./internal/schema/
	$(GO) test -run='^$$' -fuzz='^FuzzHandler$$' -fuzztime=10s -fuzzminimizetime=1s ./internal/schemaregistry/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeState$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/schemaregistry/
	$(GO) test -run='^$$' -fuzz='^FuzzRemoteAnswers$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/schemaregistry/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEntry$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/catalog/
	$(GO) test -run='^$$' -fuzz='^FuzzPlanShared$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/group/
	$(GO) test -run='^$$' -fuzz='^FuzzRegistryKey$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/group/
	$(GO) test -run='^$$' -fuzz='^FuzzReadMeta$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/intentlog/embedded/
	$(GO) test -run='^$$' -fuzz='^FuzzParseIndex$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/intentlog/embedded/
	$(GO) test -run='^$$' -fuzz='^FuzzReadLost$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/intentlog/embedded/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeOffsets$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/intentlog/embedded/
	$(GO) test -run='^$$' -fuzz='^FuzzSegmentName$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/intentlog/embedded/
	$(GO) test -run='^$$' -fuzz='^FuzzSinkDefs$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/sink/
	$(GO) test -run='^$$' -fuzz='^FuzzLegacyLetter$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/sink/
	$(GO) test -run='^$$' -fuzz='^FuzzJWKS$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/auth/
	$(GO) test -run='^$$' -fuzz='^FuzzOIDCDiscovery$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/auth/
	$(GO) test -run='^$$' -fuzz='^FuzzJWT$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/auth/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTokenFile$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/auth/
	$(GO) test -run='^$$' -fuzz='^FuzzBoundedBody$$' -fuzztime=5s -fuzzminimizetime=1s ./client/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRow$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/store/pebble/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTraceparent$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/telemetry/
	$(GO) test -run='^$$' -fuzz='^FuzzGenerationOfName$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/store/cassandra/
	$(GO) test -run='^$$' -fuzz='^FuzzParseCassandraSize$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/store/cassandra/
	$(GO) test -run='^$$' -fuzz='^FuzzCursor$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/eventbus/
	$(GO) test -run='^$$' -fuzz='^FuzzParseStart$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/eventbus/
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/eventbus/
	$(GO) test -run='^$$' -fuzz='^FuzzParseWire$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/schema/
	$(GO) test -run='^$$' -fuzz='^FuzzWriteCodec$$' -fuzztime=5s -fuzzminimizetime=1s ./internal/api/

clean:
	rm -rf bin
