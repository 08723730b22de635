# IPPOC: the two commands a new machine needs are `make run` and `make test`.
# `make deps` installs every Debian 12 package the project uses (idempotent,
# quiet when everything is already there).

BUILD      ?= build
ASAN_BUILD ?= build-asan
CLANG_BUILD ?= build-clang
TSAN_BUILD ?= build-tsan
STATE_DIR  ?= $(CURDIR)/.ippoc
MESON_OPTS ?= -Dwerror=true

# Packages in three sets, so a new machine installs only what it needs:
# `make run` what building and running ippocd take; `make test` also the test
# tools and real peers (and the kernel bridge's QEMU set-up); `make bench` also
# the benchmarks' own (monit and netdata are installed by bench/overhead).
DEB_BUILD  = meson ninja-build pkg-config gcc libc6-dev
DEB_LIBS   = libuv1-dev libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev \
             libpcre2-dev libinih-dev libsqlite3-dev libsodium-dev
# libsystemd-dev: the log watch reads the systemd journal through sd-journal
DEB_LIBS  += libsystemd-dev
# libxml2-dev, zlib1g-dev: HTML documents, Atom/RSS feeds and gzip'd man pages the cell reads (brain/learn_*.c)
DEB_LIBS  += libxml2-dev zlib1g-dev
# libgit2-dev: the genome; liblua5.4-dev: ToolSmith; libseccomp-dev and bubblewrap: the WorldModel sandbox (src/evolve)
DEB_LIBS  += libgit2-dev liblua5.4-dev libseccomp-dev bubblewrap
# libavahi-client-dev: [mesh] discover = mdns (its headers; libavahi-client3 is loaded at run time when there)
DEB_LIBS  += libavahi-client-dev
DEB_RUN    = $(DEB_BUILD) $(DEB_LIBS)
DEB_TEST   = clang libcmocka-dev python3 python3-prometheus-client curl sqlite3 procps util-linux psmisc \
             prometheus prometheus-node-exporter
# prometheus and prometheus-node-exporter: the /metrics side-by-side tests run
# them as their own processes on temp ports (installing them starts nothing
# the tests use). The kernel bridge's test: Debian's kernel headers to build the module
# against, QEMU and a static busybox to boot Debian's kernel with it (tests/netlab too:
# its netem, which this machine's kernel lacks, for the mesh's network tests; iproute2: ip and tc).
# systemd-journal-remote writes the real journal files tests/logs reads
DEB_TEST  += systemd-journal-remote
# bench/retrieval searches every installed man page (and its test corpus is them): the pages and groff
DEB_TEST  += manpages manpages-dev groff-base
# wabt: wasm-interp runs WebAssembly tools and wat2wasm builds the test's tool (tests/evolve); git: the self-code test's repository
DEB_TEST  += wabt git
# python3-yaml: it-skill parses the OpenClaw skill's frontmatter; cppcheck, clang-tidy: `ippoc review`'s static checks (it-review)
DEB_TEST  += python3-yaml cppcheck clang-tidy
# chromium: the dashboard's real-browser test (tests/web, it-dashboard) drives Debian's; fonts-dejavu-core: its screenshot's text
DEB_TEST  += chromium fonts-dejavu-core
# avahi-daemon, dbus-daemon, iproute2: it-mesh-mdns runs a private bus and avahi-daemon in its own network namespace
DEB_TEST  += avahi-daemon dbus-daemon iproute2
DEB_KERNEL = qemu-system-x86 linux-headers-amd64 busybox-static cpio sparse make iproute2
DEB_BENCH  = python3-numpy python3-matplotlib
# bench/evolve-postgres: PostgreSQL 15 and pgbench, scipy to cross-check the statistics
DEB_BENCH += postgresql-15 postgresql-client-15 python3-scipy
# bench/web-lighthouse: Lighthouse (npm, pinned there) drives Debian's chromium (its peer netdata: see bench/overhead)
DEB_BENCH += chromium
KERNEL_CACHE ?= $(CURDIR)/.cache/kernel

# When this make started: `make run` says how long the way to a running daemon took.
START_S := $(shell date +%s)

.PHONY: all deps deps-run deps-test deps-bench kernel-image node install-node web-test-deps build build-tests build-asan build-tsan build-clang run test test-unit clean bench

all: build

# $(call install_missing,PACKAGES): installs those of PACKAGES that are missing (quiet when none is).
define install_missing
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "make: installing" $$missing; \
	  if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps-run:
	$(call install_missing,$(DEB_RUN))

deps-test: deps-run
	$(call install_missing,$(DEB_TEST) $(DEB_KERNEL))
	@$(MAKE) --no-print-directory kernel-image
	@$(MAKE) --no-print-directory web-test-deps

deps-bench: deps-run
	$(call install_missing,$(DEB_BENCH))

# Everything the project uses.
deps: deps-test deps-bench

# The Debian kernel that tests/kernel boots under QEMU, matching the headers
# package: unpacked into $(KERNEL_CACHE), never installed into /boot (what
# this machine boots is not ours to change). Of its modules only those
# tests/netlab loads are kept (netem, veth, bridge, the 9p root, overlay and
# what they depend on, per each .ko's modinfo depends=; the .deb has no
# modules.dep, depmod makes it at install time); a cache unpacked before
# without them is completed.
NETLAB_MODULES = net/sched/sch_netem.ko drivers/net/veth.ko net/bridge net/802/stp.ko net/llc \
                 net/9p fs/9p fs/netfs fs/fscache fs/overlayfs drivers/virtio
kernel-image:
	@kver=$$(dpkg-query -W -f='$${Depends}' linux-headers-amd64 2>/dev/null | sed -n 's/^linux-headers-\([^ ,]*\).*/\1/p'); \
	netem=lib/modules/$$kver/kernel/net/sched/sch_netem.ko; \
	if [ -n "$$kver" ] && { [ ! -r /boot/vmlinuz-$$kver ] || [ ! -r /$$netem ]; } && \
	   { [ ! -r $(KERNEL_CACHE)/boot/vmlinuz-$$kver ] || [ ! -r $(KERNEL_CACHE)/$$netem ]; }; then \
	  echo "make deps: fetching linux-image-$$kver for tests/kernel and tests/netlab (unpacked into $(KERNEL_CACHE), not installed)"; \
	  tmp=$$(mktemp -d) && mkdir -p $(KERNEL_CACHE)/lib/modules/$$kver && \
	  (cd $$tmp && apt-get download -qq linux-image-$$kver 2>/dev/null && \
	   dpkg-deb -x linux-image-$${kver}_*.deb x && cp -a x/boot $(KERNEL_CACHE)/ && \
	   cd x/lib/modules/$$kver && \
	   cp -a --parents modules.order modules.builtin $(addprefix kernel/,$(NETLAB_MODULES)) \
	     $(KERNEL_CACHE)/lib/modules/$$kver/); \
	  rc=$$?; rm -rf $$tmp; exit $$rc; \
	fi

# Node.js and npm: the machine's when `node` is there (any 18.19+), else Debian's.
node:
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory DEB_NODE="nodejs npm" install-node; fi

install-node:
	$(call install_missing,$(DEB_NODE))

# tests/web's pinned playwright-core (package-lock.json), installed by npm ci
# when node_modules is missing or older than the lock file; quiet otherwise.
web-test-deps: node
	@if [ ! -f tests/web/node_modules/.package-lock.json ] || \
	    [ tests/web/package-lock.json -nt tests/web/node_modules/.package-lock.json ]; then \
	  echo "make: npm ci in tests/web (playwright-core for it-dashboard)"; \
	  cd tests/web && npm ci --no-audit --no-fund --loglevel=error; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) $(MESON_OPTS) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

$(TSAN_BUILD)/build.ninja:
	meson setup $(TSAN_BUILD) $(MESON_OPTS) -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug

$(CLANG_BUILD)/build.ninja:
	CC=clang meson setup $(CLANG_BUILD) $(MESON_OPTS)

build: deps-run $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The test tree is the same build dir, configured again once cmocka is there
# (a tree first set up by `make run` has no tests).
build-tests: deps-test $(BUILD)/build.ninja
	@[ -d $(BUILD)/tests ] || meson setup --reconfigure $(BUILD) $(MESON_OPTS)
	ninja -C $(BUILD)

build-asan: deps-test $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

build-tsan: deps-test $(TSAN_BUILD)/build.ninja
	ninja -C $(TSAN_BUILD)

# clang must compile it warning-free too; its tests are the gcc tree's.
build-clang: deps-test $(CLANG_BUILD)/build.ninja
	ninja -C $(CLANG_BUILD)

run: build
	@mkdir -p $(STATE_DIR)
	@echo "make run: packages and build took $$(( $$(date +%s) - $(START_S) )) s"
	@echo "ippocd: state in $(STATE_DIR); API at http://127.0.0.1:7070 (try: $(BUILD)/src/cli/ippoc status)"
	exec $(BUILD)/src/daemon/ippocd --state-dir $(STATE_DIR)

# Every test, in the normal tree, again under ASan+UBSan, and again under
# ThreadSanitizer (the daemon is multi-threaded); the last line is
# "N passed, N failed".
test: build-tests build-asan build-tsan build-clang
	@tests/run-all.sh $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)

test-unit: build-tests
	meson test -C $(BUILD) --suite unit --print-errorlogs

# Every benchmark, each beside its named peer (bench/README.md has the tables).
bench: deps-bench build
	bench/overhead/run.sh
	bench/time-to-heal/run.sh
	BUILD=$(BUILD) bench/nab/run.sh
	BUILD=$(BUILD) bench/detect-throughput/run.sh
	if ls bench/quiet/data/*.csv.xz >/dev/null 2>&1; then BUILD=$(BUILD) bench/quiet/run.sh --inject; fi
	BUILD=$(BUILD) bench/web-lighthouse/run.sh
# mesh-real: 30 real cells against mesh-sim (mesh-tool is built with the tests)
	if [ -x $(BUILD)/tests/mesh/mesh-tool ]; then BUILD=$(BUILD) bench/mesh-real/run.py; else echo 'mesh-real: skipped, $(BUILD) has no tests/mesh/mesh-tool (configure with cmocka)'; fi

# The dashboard's charting library (uPlot), vendored: refreshes web/vendor/
# from npm at the version web/package.json and package-lock.json pin (npm ci),
# then checks the copies equal the package's files. The copies are committed,
# so building and `make run` need no Node; only this target does.
.PHONY: web-vendor
web-vendor:
	cd web && npm ci --ignore-scripts --no-audit --no-fund
	cp web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css web/vendor/
	cp web/node_modules/uplot/LICENSE web/vendor/LICENSE.uPlot
	cmp web/node_modules/uplot/dist/uPlot.iife.min.js web/vendor/uPlot.iife.min.js
	cmp web/node_modules/uplot/dist/uPlot.min.css web/vendor/uPlot.min.css
	cmp web/node_modules/uplot/LICENSE web/vendor/LICENSE.uPlot
	@echo "web/vendor/: uplot $$(node -p 'require("./web/node_modules/uplot/package.json").version'); commit what changed (git status web/vendor)"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(CLANG_BUILD)
