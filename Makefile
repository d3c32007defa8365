# tokensmith — `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

BIN            := $(CURDIR)/bin
CONTROLLER_GEN_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION  ?= v2.15.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GOLANGCI_LINT  := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
IMG            ?= tokensmith:dev
FUZZTIME       ?= 3s
GO_TEST_FLAGS  ?=
# The packages whose own goroutines could race (handlers, caches, limiters,
# reconcilers, the CLI's wiring): make test runs them with the race detector
# instead of a second time without it. The rest (api types, the chart, test/
# harnesses driving built binaries, hack tools) runs without.
RACE_PKGS      ?= ./cmd/... ./controllers/... ./internal/... ./server/...
# Tests that measure timing, which the race detector distorts: they skip
# themselves under -race and run here without it.
NORACE_TESTS   ?= -run '^TestNoEnumerationByBodyOrTiming$$' ./server/lockout

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs and RBAC from the Go markers, and copy the CRDs into the chart.
	$(CONTROLLER_GEN) rbac:roleName=tokensmith-controller crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	hack/sync-chart-crds.sh
	hack/sync-chart-rbac.sh

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -s -w $$(git ls-files --cached --others --exclude-standard '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: generate manifests ## Fail when generated files drift from the code, or code is not gofmt'ed or vetted.
	@git diff --exit-code -- api config charts || { echo "generated files are out of date: run 'make generate manifests' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api config charts)" || { git status --porcelain -- api config charts; echo "untracked generated files: run 'make generate manifests' and commit"; exit 1; }
	@out=$$(gofmt -s -l $$(git ls-files --cached --others --exclude-standard '*.go')); test -z "$$out" || { echo "not gofmt'ed: $$out"; exit 1; }
	go vet ./...

.PHONY: control-plane
control-plane: ## Build kube-apiserver and etcd from pinned Go modules into bin/ (cached).
	@hack/build-control-plane.sh >/dev/null

.PHONY: node
node: ## Install the one-node cluster's Debian packages (root) and build kubelet & co. into bin/ (cached).
	hack/install-node-packages.sh
	@hack/build-node.sh >/dev/null

.PHONY: test
test: control-plane node ## Run every test against a real kube-apiserver (RACE_PKGS with -race), the chart on a one-node cluster, then a short fuzz run.
	@# -k: every stage runs even when an earlier one fails, so one run shows
	@# every failure; make still exits non-zero and names the failed stages.
	$(MAKE) -k test-race test-norace test-timing test-cluster test-fuzz

.PHONY: test-race test-norace test-timing test-fuzz
test-race: control-plane ## Stage of make test: RACE_PKGS with the race detector.
	KUBEBUILDER_ASSETS=$$(hack/build-control-plane.sh) go test $(GO_TEST_FLAGS) -race -count=1 -timeout 20m $(RACE_PKGS)

test-norace: control-plane ## Stage of make test: every other package but test/cluster, without -race.
	KUBEBUILDER_ASSETS=$$(hack/build-control-plane.sh) go test $(GO_TEST_FLAGS) -count=1 -timeout 20m $$(go list ./... | grep -v /test/cluster | grep -vxF -f <(go list $(RACE_PKGS)))

test-timing: control-plane ## Stage of make test: the timing tests -race distorts (NORACE_TESTS).
	KUBEBUILDER_ASSETS=$$(hack/build-control-plane.sh) go test $(GO_TEST_FLAGS) -count=1 -timeout 20m $(NORACE_TESTS)

test-fuzz: control-plane ## Stage of make test: every fuzz target for FUZZTIME.
	KUBEBUILDER_ASSETS=$$(hack/build-control-plane.sh) hack/fuzz.sh $(FUZZTIME)

.PHONY: test-cluster
test-cluster: control-plane node ## Run only the one-node cluster test: helm install of the chart's real pods (root).
	go test $(GO_TEST_FLAGS) -count=1 -timeout 20m -v ./test/cluster/...

.PHONY: fuzz
fuzz: control-plane ## Run every fuzz target for longer (FUZZTIME=2m by default here).
	KUBEBUILDER_ASSETS=$$(hack/build-control-plane.sh) hack/fuzz.sh $(if $(filter 3s,$(FUZZTIME)),2m,$(FUZZTIME))

.PHONY: bench
bench: control-plane build ## Measure the token server against a same-run baseline; writes bench/results/.
	KUBEBUILDER_ASSETS=$$(hack/build-control-plane.sh) go run ./hack/bench $(BENCH_FLAGS)

##@ Build

.PHONY: build
build: ## Build the tokensmith binary (what the image holds) and tokensmith-local (make run) into bin/.
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $(BIN)/tokensmith .
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/tokensmith-local ./cmd/tokensmith-local

.PHONY: image
image: build ## Build the OCI image tarball bin/image/tokensmith.tar with go-containerregistry (no Docker).
	go run ./hack/image -binary $(BIN)/tokensmith -o $(BIN)/image/tokensmith.tar -tag $(IMG) \
		-version $$(git describe --tags --always --dirty 2>/dev/null || echo dev) -revision $$(git rev-parse HEAD 2>/dev/null)

.PHONY: run
run: control-plane build ## Run a local control plane with the controller and the token server on 127.0.0.1:4000.
	KUBEBUILDER_ASSETS=$$(hack/build-control-plane.sh) $(BIN)/tokensmith-local

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

.PHONY: helm-lint
helm-lint: ## Lint the chart with the Helm Go SDK (no helm binary needed).
	go test -count=1 -run 'TestChartLint' ./charts/...

##@ Tools

$(CONTROLLER_GEN):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(BIN)/controller-gen $@

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $@
