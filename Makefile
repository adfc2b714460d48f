# vhw — the two commands a newcomer needs:
#   make demo   boot a guest against vhw's devices and show its drivers working
#   make test   everything CI runs: unit, component and end-to-end tests
# Both install what they need first (Debian packages as root, a virtualenv,
# the guest image in ~/.cache/vhw), quietly when it is already there.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VHW := $(VENV)/bin/vhw
# Parallel test workers (pytest-xdist); every test is parallel-safe.
JOBS ?= auto
PYTEST_ARGS ?=

DEB_PACKAGES := qemu-system-x86 qemu-system-sparc qemu-system-data qemu-utils \
	busybox-static cpio lz4 ipmitool freeipmi-tools openipmi \
	gcc make libc6-dev kmod binutils libelf1 \
	gcc-sparc64-linux-gnu linux-source-6.1 flex bison bc rsync \
	tshark zstd genisoimage syslinux syslinux-common mtools dosfstools \
	lava-dispatcher lavacli

# LAVA's device-type templates (qemu.jinja2, base.jinja2) are in lava-server;
# `vhw lava` needs only the templates, so deps unpacks them from its package.
LAVA_TEMPLATES := $(or $(VHW_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/vhw)/lava/device-types

.PHONY: all deps venv compiled images test lint unit e2e test-guest driver-tests-console demo bench clean help

all: test

help:
	@echo "make demo    boot the Linux guest against vhw's BMC and I2O IOP and show its drivers working"
	@echo "make test    install what is missing, build the guest image once, run every test"
	@echo "make images  build the guest images into the cache (~/.cache/vhw, or \$$VHW_CACHE_DIR);"
	@echo "             the two SPARC kernels take about 5 minutes each, once"
	@echo "make bench   run the benchmarks in bench/ (vhw against the reference implementations)"
	@echo "make deps    install the Debian packages (needs root)"
	@echo "make unit    only the tests that need no QEMU"
	@echo "make lint    ruff and mypy (make test runs them first)"
	@echo "make driver-tests-console"
	@echo "             examples/driver-tests with the guest reached over its serial console only"
	@echo "make test-guest GUEST=NAME [IMAGE=PATH]"
	@echo "             the driver tests against one guest (vhw guest list); downloaded guests"
	@echo "             (FreeBSD, illumos, NetBSD) need the internet or IMAGE=your-own-build.img"

deps: .deps.stamp
.deps.stamp: Makefile
	@missing=; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	lists=$$(ls /var/lib/apt/lists/ 2>/dev/null | grep -c '_Packages' || true); \
	if [ -n "$$missing" ] || [ "$$lists" = 0 ]; then \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi; \
		echo "[deps] installing:$${missing:- (package lists only)}"; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
		|| { echo "[deps] apt-get failed: run 'make deps' as root"; exit 1; }; \
	fi
	@test -f $(LAVA_TEMPLATES)/qemu.jinja2 || { \
		tmp=$$(mktemp -d) && (cd $$tmp && apt-get download -q lava-server >/dev/null) && \
		dpkg-deb -x $$tmp/lava-server_*.deb $$tmp/x && mkdir -p $(LAVA_TEMPLATES) && \
		cp $$tmp/x/usr/share/lava-server/device-types/*.jinja2 $(LAVA_TEMPLATES)/ && rm -rf $$tmp; } \
		|| { echo "[deps] could not unpack LAVA's device-type templates from lava-server"; exit 1; }
	@touch $@

venv: $(VENV)/.stamp compiled
$(VENV)/.stamp: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c 'import vhw, qemu.qmp, pyipmi, pytest' || { echo "[venv] install failed"; exit 1; }
	@touch $@

# The hot path (vhw.compiled.HOT_MODULES) compiled with mypyc into $(VENV)/vhw-compiled,
# rebuilt whenever one of its sources changed (a stale build is never loaded).
compiled: $(VENV)/.stamp
	@$(PY) -W ignore::RuntimeWarning -c 'import sys, vhw.compiled as c; sys.exit(c.main(["build", "--if-stale"]))' \
		|| echo "[venv] continuing with the pure Python hot path"

images: deps venv
	@$(VHW) guest build linux-x86
	@$(VHW) guest build linux-sparc64
	@$(VHW) guest build linux-sparc32

# The driver tests run twice: over the guest agent, and over the serial console
# alone (the way into the FreeBSD, illumos and NetBSD guests); both must agree.
test: deps venv images lint
	@rm -rf build/vhw-results build/vhw-results-console  # one run's results each
	$(PY) -m pytest -n $(JOBS) --dist loadgroup --junitxml=build/junit.xml $(PYTEST_ARGS) tests examples/driver-tests
	VHW_PURE=1 $(PY) -m pytest -q -n $(JOBS) $(PYTEST_ARGS) tests/unit/ipmi/wire  # the same codecs uncompiled
	$(MAKE) --no-print-directory driver-tests-console
	$(VHW) report build/vhw-results --compare build/vhw-results-console

driver-tests-console: deps venv
	$(PY) -m pytest -n $(JOBS) --dist loadgroup --vhw-access console --vhw-results build/vhw-results-console \
		--junitxml=build/junit-console.xml $(PYTEST_ARGS) examples/driver-tests

# Style and types: the rule sets are in pyproject.toml.
lint: venv
	$(VENV)/bin/ruff check vhw tests bench examples guest-images
	$(VENV)/bin/mypy vhw

unit: venv
	$(PY) -m pytest -n $(JOBS) --dist loadgroup -m "not e2e" $(PYTEST_ARGS) tests

test-guest: deps venv
	@test -n "$(GUEST)" || { echo "usage: make test-guest GUEST=NAME [IMAGE=PATH]   (names: $(VHW) guest list)"; exit 2; }
	@$(VHW) guest test $(GUEST) $(if $(IMAGE),--image $(IMAGE)); rc=$$?; \
	if [ $$rc = 77 ]; then echo "[make] test-guest $(GUEST): skipped (the reason is above)"; exit 0; fi; exit $$rc

e2e: deps venv images
	$(PY) -m pytest -n $(JOBS) --dist loadgroup -m e2e $(PYTEST_ARGS) tests
	$(PY) -m pytest -n $(JOBS) --dist loadgroup $(PYTEST_ARGS) examples/driver-tests
	$(MAKE) --no-print-directory driver-tests-console

# The demo boots only linux-x86 (built on first use, about 10 s); the SPARC
# kernels are for `make test` and `make images`.
demo: deps venv
	@$(PY) -m vhw.demo

bench: deps venv images
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .deps.stamp .pytest_cache build *.egg-info
