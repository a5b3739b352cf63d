# keyd — non-recursive build.
#
#   make              libkeyd, keyd, keyd-simfw, keyd-recover, the token plugin
#   make check        every test (unit, integration on LUKS2 images, VM, model)
#   make check-asan   unit and integration tests under ASan + UBSan
#   make demo         the main job on the simulated AMD-SP, narrated
#   make bench        benchmarks, side by side with the alternatives
#   make install DESTDIR=...
#
# Build outputs go to $(B) (build/ by default; build-asan/ for sanitizers).

SHELL := /bin/bash
.DEFAULT_GOAL := all

SAN ?= 0
FP ?= 0
ifeq ($(SAN),1)
B ?= build-asan
else ifeq ($(FP),1)
# Test build with failpoints compiled in (crash-safety tests).
B ?= build-fp
else
B ?= build
endif

PREFIX ?= /usr
MULTIARCH ?= $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || $(CC) -print-multiarch 2>/dev/null)
LIBDIR ?= $(PREFIX)/lib/$(MULTIARCH)
TOKENDIR ?= $(LIBDIR)/cryptsetup
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
KEYD_LIBEXECDIR ?= $(PREFIX)/lib/keyd
INITRAMFS_TOOLS_DIR ?= $(PREFIX)/share/initramfs-tools
DRACUT_MODULES_DIR ?= $(PREFIX)/lib/dracut/modules.d
# Debian 12 keeps systemd's units in /lib/systemd/system.
SYSTEMD_UNITDIR ?= /lib/systemd/system

CC ?= gcc
PKGS := libcryptsetup openssl json-c devmapper blkid libseccomp
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lgfshare
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

WARN := -Wall -Wextra -Wformat=2 -Wformat-security -Wvla -Wshadow \
	-Wpointer-arith -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes \
	-Wundef -Wimplicit-fallthrough -Wno-unused-parameter
HARDEN := -fstack-protector-strong -fstack-clash-protection -fcf-protection \
	-fPIC -fno-strict-overflow -fno-delete-null-pointer-checks
ifeq ($(SAN),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDSAN := -fsanitize=address,undefined
else
OPT := -O2 -g -D_FORTIFY_SOURCE=2
LDSAN :=
endif
EXTRA_CFLAGS ?=
ifeq ($(FP),1)
EXTRA_CFLAGS += -DKEYD_FAILPOINTS
endif
KEYD_VERSION := 0.1.0
# -Werror for development and CI; packagers build with WERROR=0 (debian/rules).
WERROR ?= 1
ifeq ($(WERROR),1)
WARN += -Werror
endif
# keyd's own flags come first; a packager's CPPFLAGS, CFLAGS and LDFLAGS (from the
# environment or the command line) are added after them, so they can tune
# optimisation but never drop the warnings or the hardening.
override CPPFLAGS := -D_GNU_SOURCE -DKEYD_VERSION=\"$(KEYD_VERSION)\" -Ikeyd/include -Ikeyd/lib \
	-Ikeyd/tools/common $(CPPFLAGS)
override CFLAGS := -std=gnu11 $(OPT) $(WARN) $(HARDEN) $(PKG_CFLAGS) $(EXTRA_CFLAGS) $(CFLAGS)
# assert() marks programmer errors (a broken internal contract, never bad
# input): it stays on in every build, whatever NDEBUG a packager passes.
override CFLAGS += -UNDEBUG
override LDFLAGS := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack -Wl,--as-needed $(LDSAN) $(LDFLAGS)

# ---------------------------------------------------------------- sources
LIB_SRCS := $(sort $(wildcard keyd/lib/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
LIBKEYD := $(B)/libkeyd.a

# The simulated AMD-SP: a test double, linked only by keyd-simfw and the tests.
SIM_SRCS := $(sort $(wildcard keyd/sim/*.c))
SIM_OBJS := $(SIM_SRCS:%.c=$(B)/obj/%.o)
LIBSIM := $(B)/libkeyd-sim.a
SIM_CPPFLAGS := -Ikeyd/sim/include

CLI_COMMON := $(sort $(wildcard keyd/tools/common/*.c))
KEYD_SRCS := $(sort $(wildcard keyd/tools/keyd/*.c)) $(CLI_COMMON)
# keyd-simfw has no volumes: it links no volume-cli.c (the volume tools' shared code).
SIMFW_SRCS := $(sort $(wildcard keyd/tools/simfw/*.c)) $(filter-out %/volume-cli.c,$(CLI_COMMON))
RECOVER_SRCS := $(sort $(wildcard keyd/tools/recover/*.c)) $(CLI_COMMON)
PLUGIN_SRCS := $(sort $(wildcard luks-hooks/plugin/*.c))

PROD_BINS := $(B)/keyd $(B)/keyd-recover
PROD_MANS := $(filter-out man/keyd-simfw.8,$(sort $(wildcard man/*.8)))
BINS := $(PROD_BINS) $(B)/keyd-simfw

# The test guest's /dev/sev-guest (CUSE, libfuse3) in front of keyd-simfw: a
# test rig like keyd-simfw, installed only by install-simfw. It speaks the
# wire protocol of libkeyd and links no simulated firmware.
CUSE_CFLAGS = $(shell pkg-config --cflags fuse3 2>/dev/null)
CUSE_LIBS = $(shell pkg-config --libs fuse3 2>/dev/null)
SEVGUEST_OBJ := $(B)/obj/keyd/sim/cuse/sevguest.o
SEVGUEST_CUSE := $(B)/keyd-sevguest-cuse
BINS += $(SEVGUEST_CUSE)
# Its configfs-tsm report tree (FUSE, libfuse3): the same kind of test rig,
# never installed (not even by install-simfw: only the test initramfs has it).
TSMTREE_OBJ := $(B)/obj/keyd/sim/tsm/tsmtree.o
SEVGUEST_TSM := $(B)/keyd-sevguest-tsm
BINS += $(SEVGUEST_TSM)
ifneq ($(strip $(PLUGIN_SRCS)),)
PLUGIN := $(B)/libcryptsetup-token-keyd.so
endif

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
TEST_HELPERS := $(sort $(wildcard tests/unit/helpers/*.c))
TEST_TOOLS := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(sort $(wildcard tests/tools/*.c)))

DEPFLAGS = -MMD -MP
# Tests find the real AMD vectors in the tree unless $KEYD_VECTORS says otherwise.
TEST_CPPFLAGS = -DKD_TEST_VECTORS=\"$(abspath tests/vectors)\" -DKD_TEST_SRC=\"$(abspath .)\"

.PHONY: all
all: $(LIBKEYD) $(BINS) $(PLUGIN) $(TEST_TOOLS)

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(LIBKEYD): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(SIM_OBJS): CPPFLAGS += $(SIM_CPPFLAGS)
$(LIBSIM): $(SIM_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(B)/keyd: $(KEYD_SRCS:%.c=$(B)/obj/%.o) $(LIBKEYD)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(SIMFW_SRCS:%.c=$(B)/obj/%.o): CPPFLAGS += $(SIM_CPPFLAGS)
$(B)/keyd-simfw: $(SIMFW_SRCS:%.c=$(B)/obj/%.o) $(LIBSIM) $(LIBKEYD)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/obj/keyd/sim/cuse/main.o: CFLAGS += $(CUSE_CFLAGS)
$(SEVGUEST_CUSE): $(B)/obj/keyd/sim/cuse/main.o $(SEVGUEST_OBJ) $(LIBKEYD)
	@pkg-config --exists fuse3 || { echo "keyd-sevguest-cuse needs libfuse3-dev (make deps)" >&2; exit 1; }
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CUSE_LIBS)

$(B)/obj/keyd/sim/tsm/main.o: CFLAGS += $(CUSE_CFLAGS)
$(SEVGUEST_TSM): $(B)/obj/keyd/sim/tsm/main.o $(TSMTREE_OBJ) $(LIBKEYD)
	@pkg-config --exists fuse3 || { echo "keyd-sevguest-tsm needs libfuse3-dev (make deps)" >&2; exit 1; }
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CUSE_LIBS)

$(B)/keyd-recover: $(RECOVER_SRCS:%.c=$(B)/obj/%.o) $(LIBKEYD)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/libcryptsetup-token-keyd.so: $(PLUGIN_SRCS:%.c=$(B)/obj/%.o) $(LIBKEYD) luks-hooks/plugin/token.sym
	$(CC) $(CFLAGS) -shared -Wl,-z,relro,-z,now -Wl,--version-script=luks-hooks/plugin/token.sym \
		$(LDSAN) -o $@ $(PLUGIN_SRCS:%.c=$(B)/obj/%.o) $(LIBKEYD) $(PKG_LIBS)

$(TEST_HELPERS:%.c=$(B)/obj/%.o): CPPFLAGS += $(SIM_CPPFLAGS)
# test_sevguest drives the emulated device's ABI in process.
$(B)/tests/test_sevguest: $(SEVGUEST_OBJ)
# test_tsmtree drives the configfs-tsm tree through that device.
$(B)/tests/test_tsmtree: $(TSMTREE_OBJ) $(SEVGUEST_OBJ)
$(B)/tests/%: tests/unit/%.c $(TEST_HELPERS:%.c=$(B)/obj/%.o) $(LIBSIM) $(LIBKEYD)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(SIM_CPPFLAGS) $(TEST_CPPFLAGS) $(CFLAGS) -Itests/unit -Ikeyd/sim/cuse -Ikeyd/sim/tsm $(DEPFLAGS) $(LDFLAGS) -o $@ $< \
		$(filter %/sevguest.o %/tsmtree.o,$^) $(TEST_HELPERS:%.c=$(B)/obj/%.o) $(LIBSIM) $(LIBKEYD) $(PKG_LIBS) $(CHECK_LIBS)

# VM scenario 17 runs this raw-ioctl probe of /dev/sev-guest inside the guest.
SEVGUEST_PROBE := $(B)/tests/sevguest-probe
$(SEVGUEST_PROBE): tests/vm/sevguest-probe.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<

# Test-only tools: tests/tools/<name>.c -> $(B)/tests/tools/<name> (never installed)
$(B)/tests/tools/%: tests/tools/%.c $(LIBKEYD)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBKEYD) $(PKG_LIBS)

# Benchmark helpers: tests/bench/<name>.c -> $(B)/bench/<name>
BENCH_BINS := $(patsubst tests/bench/%.c,$(B)/bench/%,$(sort $(wildcard tests/bench/*.c)))
$(B)/bench/%: tests/bench/%.c $(LIBKEYD)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBKEYD) $(PKG_LIBS)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- deps
# Debian 12 packages for building and testing. Installed only when missing.
DEB_BUILD := gcc make pkg-config libcryptsetup-dev libssl-dev libjson-c-dev \
	libdevmapper-dev libblkid-dev libgfshare-dev libseccomp-dev check libsubunit-dev \
	cryptsetup-bin e2fsprogs util-linux xxd ovmf libfuse3-dev \
	libengine-pkcs11-openssl softhsm2 opensc
DEB_VM := qemu-system-x86 linux-image-amd64 busybox-static cpio kmod initramfs-tools mmdebstrap
DEB_MODEL := spin
DEB_FUZZ := clang-14 libclang-rt-14-dev
DEB_VALGRIND := valgrind
DEB_PKG := debhelper lintian fakeroot dpkg-dev
DEB_LINT := shellcheck

define apt_ensure
missing=$$(for p in $(1); do [ "$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null)" = 'install ok installed' ] || echo $$p; done); \
if [ -n "$$missing" ]; then \
	echo "keyd: installing missing Debian packages:" $$missing; \
	if [ "$$(id -u)" != 0 ]; then echo "keyd: run as root (apt) or install: $$missing" >&2; exit 1; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y --no-install-recommends $$missing >/dev/null || \
	  { apt-get update >/dev/null && apt-get install -y --no-install-recommends $$missing >/dev/null; }; \
fi
endef

.PHONY: deps deps-vm deps-vm-kernel2 deps-model deps-fuzz deps-valgrind deps-deb deps-lint
deps:
	@$(call apt_ensure,$(DEB_BUILD))
deps-vm: deps
	@$(call apt_ensure,$(DEB_VM))
# Debian 12's 6.12 kernel (bookworm-security), which check-vm boots next to
# the default 6.1 for the scenarios that touch the guest interface: unpacked
# into $(B)/vm-kernels, not installed (the host's boot setup is left alone).
VM_KERNEL2_PKG ?= linux-image-6.12-amd64
deps-vm-kernel2: deps-vm
	@tests/vm/fetch-kernel.sh $(abspath $(B))/vm-kernels $(VM_KERNEL2_PKG) >/dev/null
deps-model:
	@$(call apt_ensure,$(DEB_MODEL))
deps-fuzz:
	@$(call apt_ensure,$(DEB_FUZZ))
deps-valgrind:
	@$(call apt_ensure,$(DEB_VALGRIND))
deps-deb:
	@$(call apt_ensure,$(DEB_PKG))
deps-lint:
	@$(call apt_ensure,$(DEB_LINT))

# ---------------------------------------------------------------- tests
export KEYD_BUILD := $(abspath $(B))
export KEYD_SRC := $(abspath .)
export KEYD_VECTORS ?= $(abspath tests/vectors)

.PHONY: check check-unit check-integration check-asan check-vm model-check check-valgrind lint
# CHECK_BESIDE_VM="check-asan fuzz-replay" (CI, .ci/run) runs those targets
# beside check-vm, whose TCG guests leave one core idle (tests/beside-vm.sh).
CHECK_BESIDE_VM ?=
check: deps deps-vm deps-vm-kernel2 deps-model deps-valgrind deps-deb deps-lint $(if $(CHECK_BESIDE_VM),deps-fuzz)
	$(MAKE) lint
	$(MAKE) all $(UNIT_BINS)
	$(MAKE) check-unit check-integration
	$(MAKE) deb
	$(MAKE) check-valgrind
	$(MAKE) model-check
	$(if $(CHECK_BESIDE_VM),@tests/beside-vm.sh "$(CHECK_BESIDE_VM)",$(MAKE) check-vm)

# ShellCheck at severity warning over every shell script (tests/lint.sh).
lint: deps-lint
	@tests/lint.sh

check-unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

check-integration: all
	@# Crash-safety tests run the failpoint build (build-fp) next to the normal one.
	@$(MAKE) --no-print-directory FP=1 SAN=0 B=build-fp all >/dev/null
	@KEYD_BUILD_FP=$(abspath build-fp) tests/run-integration.sh

check-asan: deps
	$(MAKE) SAN=1 all
	$(MAKE) SAN=1 check-unit check-integration

# Host-level unit suites under valgrind memcheck: errors or definite leaks fail.
# keyd-simfw (in all) makes the fixture chips natively (tests/unit/helpers/chip.h).
check-valgrind: all $(UNIT_BINS)
	@tests/run-valgrind.sh $(UNIT_BINS)

# Every tests/vm/NN-*.sh (tests/vm/run.sh): the test image's scenarios, and the systemd GuestOS
# ones (12 initramfs-tools, 13 upgrade, 14 systemd-cryptsetup, 15 dracut) on an image built with
# mmdebstrap (its package lists in tests/vm/guestos-lib.sh: the dracut image's adds dracut-core).
check-vm: all $(SEVGUEST_PROBE) deps-vm deps-vm-kernel2
	@if [ -x tests/vm/run.sh ]; then tests/vm/run.sh; else echo "check-vm: no VM tests"; fi

model-check: deps-model
	@if [ -x threat-model/model/check.sh ]; then threat-model/model/check.sh; else echo "model-check: no model"; fi

.PHONY: demo bench fuzz fuzz-replay initramfs
demo: deps deps-vm all
	@tests/demo.sh

bench: deps all $(BENCH_BINS)
	@tests/bench/run.sh

# A timed campaign (FUZZ_SECONDS per target, default 60); not part of CI.
fuzz: deps-fuzz
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

# CI: every target once over its committed corpus and regression inputs
# (deterministic: no mutation, no time limit). See tests/fuzz/run.sh.
fuzz-replay: deps-fuzz
	@tests/fuzz/run.sh --replay

initramfs: deps-vm all
	@initramfs/build-test-initramfs.sh $(B)

# ---------------------------------------------------------------- install
# Debian packages (keyd, libcryptsetup-token-keyd, keyd-initramfs-tools,
# keyd-dracut; keyd-simfw for test rigs) into $(B)/deb, checked by lintian.
.PHONY: deb
deb: deps-deb
	@tests/pkg/build-deb.sh $(abspath $(B))/deb

.PHONY: install
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(TOKENDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(KEYD_LIBEXECDIR)
	install -m 0755 $(PROD_BINS) $(DESTDIR)$(SBINDIR)/
	install -m 0644 $(PLUGIN) $(DESTDIR)$(TOKENDIR)/
	install -m 0644 $(PROD_MANS) $(DESTDIR)$(MANDIR)/man8/
	install -m 0755 initramfs/keyd-unlock.sh initramfs/keyd-upgrade.sh \
		initramfs/keyd-commit-pending initramfs/keyd-handoff-serve $(DESTDIR)$(KEYD_LIBEXECDIR)/
	install -d $(DESTDIR)$(SYSTEMD_UNITDIR)
	install -m 0644 systemd/keyd-commit.service systemd/keyd-handoff-serve.service \
		$(DESTDIR)$(SYSTEMD_UNITDIR)/
	install -m 0755 luks-hooks/keyscript $(DESTDIR)$(KEYD_LIBEXECDIR)/keyscript
	install -d $(DESTDIR)$(INITRAMFS_TOOLS_DIR)/hooks $(DESTDIR)$(INITRAMFS_TOOLS_DIR)/scripts/local-top
	install -m 0755 initramfs/initramfs-tools/hooks/keyd $(DESTDIR)$(INITRAMFS_TOOLS_DIR)/hooks/keyd
	install -m 0755 initramfs/initramfs-tools/scripts/local-top/keyd \
		$(DESTDIR)$(INITRAMFS_TOOLS_DIR)/scripts/local-top/keyd
	install -d $(DESTDIR)$(DRACUT_MODULES_DIR)/90keyd
	install -m 0755 initramfs/dracut/* $(DESTDIR)$(DRACUT_MODULES_DIR)/90keyd/

# The simulated AMD-SP and the test guest's emulated /dev/sev-guest, for test
# rigs only: never part of a production install.
.PHONY: install-simfw
install-simfw: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(B)/keyd-simfw $(SEVGUEST_CUSE) $(DESTDIR)$(SBINDIR)/
	install -m 0644 man/keyd-simfw.8 $(DESTDIR)$(MANDIR)/man8/

.PHONY: clean
clean:
	rm -rf build build-asan build-fp build-fuzz
