# SD3 Studio — the README's two commands: `make studio` and `make test`.
SHELL := /bin/bash

# Debian 12 packages the build needs (checked with dpkg, installed with apt-get when missing).
# libjpeg62-turbo-dev: ComfyUI's JPEG step previews; libssl-dev: TLS to comfyuis:// servers.
# libcurl4: Foundation's URLSession on Linux (FoundationNetworking, used by `sd3 models pull`) loads it at run time.
DEBIAN_PACKAGES := libdnnl-dev libopenblas-dev libncursesw5-dev libpng-dev libjpeg62-turbo-dev libssl-dev libsqlite3-dev libchafa-dev libglib2.0-dev zlib1g-dev libcurl4 pkg-config tmux
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# `swift` on PATH, else the toolchain's usual place (the README's two ways to have Swift).
SWIFT ?= $(shell command -v swift 2>/dev/null || { [ -x /opt/swift/usr/bin/swift ] && echo /opt/swift/usr/bin/swift; } || echo swift)
# The engine's thread count; CI machines and this one have 2 cores.
JOBS ?= $(shell nproc)

.PHONY: deps build release studio test test-isa test-comfyui fuzz bench clean

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else echo "Debian packages present: $(DEBIAN_PACKAGES)"; fi
	@command -v $(SWIFT) >/dev/null || { echo "error: Swift 6 toolchain not found on PATH or in /opt/swift/usr/bin (see README)"; exit 1; }

build: deps
	$(SWIFT) build -j $(JOBS)

release: deps
	$(SWIFT) build -c release -j $(JOBS)

# Opens the studio on $SD3_MODEL, else on the demo model in models/sd3-demo (or run `sd3 studio --model DIR`).
studio: release
	"$$($(SWIFT) build -c release --show-bin-path)/sd3" studio

# A crash report of the crashed thread only, without registers and image lists, and a digest of what failed printed
# last (scripts/test-digest.sh): a CI log that keeps only its tail still names the crash and the failing tests.
TEST_ENV := OMP_WAIT_POLICY=passive SWIFT_BACKTRACE=enable=yes,threads=crashed,registers=none,images=none

test: deps
	$(SWIFT) build --build-tests -j $(JOBS)
	@set -o pipefail; $(TEST_ENV) $(SWIFT) test --skip-build 2>&1 | tee .build/test.log \
	  || { scripts/test-digest.sh .build/test.log; exit 1; }
	@$(MAKE) --no-print-directory test-isa
	@SWIFT=$(SWIFT) scripts/check-no-rebuild.sh

# The parity suites (the engine's numbers against the reference) again on oneDNN's AVX2 kernels where this CPU has
# more (AVX-512, native bf16), so an AVX2 developer machine and an AVX-512 user machine are both covered wherever the
# suite runs. The first pass took the CPU's own kernels; bf16 tests say which path they asserted.
PARITY_SUITES := TensorsTests|SD3Tests
test-isa:
	@if grep -qw avx512f /proc/cpuinfo; then \
	  echo "Parity suites again with SD3_MAX_ISA=avx2 ONEDNN_MAX_CPU_ISA=AVX2 (this CPU has AVX-512)"; \
	  set -o pipefail; SD3_MAX_ISA=avx2 ONEDNN_MAX_CPU_ISA=AVX2 $(TEST_ENV) $(SWIFT) test --skip-build \
	    --filter '$(PARITY_SUITES)' 2>&1 | tee .build/test-isa.log || { scripts/test-digest.sh .build/test-isa.log; exit 1; }; \
	else echo "This CPU has no AVX-512: the parity suites ran on oneDNN's AVX2 kernels only (no second pass)"; fi

# Our ComfyUI client against two real ComfyUI 0.3.75 servers on loopback (installed in venvs outside the repo by
# scripts/comfyui/serve.sh on first use: ~3 GB, a few minutes); `make test` replays what they recorded instead.
test-comfyui: deps
	$(SWIFT) build -j $(JOBS)
	scripts/comfyui/integration.sh

# The parsers' fuzz suites (*FuzzTests) with 1,000,000 seeded mutations each instead of make test's 10,000.
fuzz: deps
	$(SWIFT) build --build-tests -j $(JOBS)
	SD3_FUZZ_ITERATIONS=1000000 $(SWIFT) test --skip-build --filter FuzzTests

bench: release
	"$$($(SWIFT) build -c release --show-bin-path)/sd3" bench --component matmul

clean:
	rm -rf .build
