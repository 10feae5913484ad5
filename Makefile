# modelpilot developer entry points. `make help` lists them.
#
# The local cluster (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kube-proxy, kwok: built from upstream Go modules by
# hack/cluster/; the node agent of the real node, hack/node-agent; the
# Debian prometheus) runs on this host; its state lives in .cluster/.
# cluster-up, cluster-down, test and demo need root: the real node's pods
# get network namespaces on a bridge, and kube-proxy writes iptables rules.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Cargo profile for `make build` / `make demo`: debug (shares artifacts with
# `cargo test`, which matters on 2 cores) or release.
PROFILE ?= debug
CARGO_PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)
MODELPILOT_BIN := target/$(PROFILE)/modelpilot

CRD_FILE := crds/modelpilot.io_modeldeployments.yaml
CHART_CRD_DIR := charts/modelpilot/crds

.PHONY: help build plugin tools cluster-up cluster-down crds lint test demo demo-down bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## Build the modelpilot binary (PROFILE=debug|release)
	cargo build $(CARGO_PROFILE_FLAG) --bin modelpilot

# The kubectl plugin is the modelpilot binary started as `kubectl-modelpilot`: kubectl runs it for
# `kubectl modelpilot <verb> NAME` once it is on the PATH. The symlink goes next to the binary, or
# into BINDIR (e.g. `make plugin BINDIR=~/.local/bin`). `modelpilot plugin …` needs no link.
plugin: build ## Link kubectl-modelpilot to the binary, next to it or in BINDIR=dir
	@dir="$(abspath $(or $(BINDIR),$(dir $(MODELPILOT_BIN))))"; \
	mkdir -p "$$dir"; \
	ln -sfn "$(abspath $(MODELPILOT_BIN))" "$$dir/kubectl-modelpilot"; \
	echo "$$dir/kubectl-modelpilot -> $(abspath $(MODELPILOT_BIN))"; \
	case ":$$PATH:" in *":$$dir:"*) ;; *) echo "add $$dir to PATH, then run: kubectl modelpilot status NAME";; esac

tools: ## Build the control-plane binaries into .cluster/bin (cached per version)
	hack/cluster/build.sh

# Says clearly, before anything starts, that the target needs root.
PREFLIGHT = hack/cluster/net.sh preflight "make $@"

cluster-up: ## Start the local cluster (idempotent; root); kubeconfig at .cluster/kubeconfig
	hack/cluster/up.sh

cluster-down: ## Stop the cluster and anything the demo started; assert nothing is left (root)
	hack/cluster/down.sh

crds: ## Regenerate the CRD YAML from the Rust types (crds/ and the chart)
	mkdir -p crds $(CHART_CRD_DIR)
	cargo run -q --bin modelpilot -- crd > $(CRD_FILE).tmp
	mv $(CRD_FILE).tmp $(CRD_FILE)
	cp $(CRD_FILE) $(CHART_CRD_DIR)/

lint: ## rustfmt check, clippy with warnings denied, shellcheck of the scripts
	shellcheck -x hack/cluster/*.sh hack/test.sh hack/demo.sh .ci/run
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: ## Everything CI runs: cluster smoke check, lint, all Rust tests (root)
	@$(PREFLIGHT)
	hack/test.sh

demo: ## Operator + inference server end to end on the local cluster (root)
	@$(PREFLIGHT)
	PROFILE=$(PROFILE) hack/demo.sh

demo-down: ## Stop the demo's operator and server, and the control plane
	hack/cluster/down.sh

bench: ## Benchmarks of the inference server (hack/bench/run.sh)
	@if [[ -x hack/bench/run.sh ]]; then hack/bench/run.sh; \
	else echo "hack/bench/run.sh is not in the tree yet" >&2; exit 1; fi
