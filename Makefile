# SPDX-License-Identifier: GPL-2.0
# cxmq top-level Makefile.
#   make                 build cxmq.ko against KDIR (default: Debian's 6.1 headers)
#   make KDIR=<tree>     build against another kernel tree (e.g. the test kernel's O= dir)
#   make check-ko        fail if cxmq.ko has global constructors or exception tables
#   make install         modules_install (INSTALL_MOD_PATH=<root> to install elsewhere); DKMS: dkms.conf
#   make host-test       the C++ core under GoogleTest with ASan+UBSan (and TSan)
#   make test            every test layer (scripts/test.sh): host, KUnit, VM
#   make demo            the main job: build, boot a VM, load, fio on /dev/cxmq0, show sysfs
#   make bench           fio rounds in one VM: cxmq against null_blk (mq, bio; none, mq-deadline, kyber; polled), brd and a floor module
#                        (scripts/bench.sh; options in BENCH_ARGS, e.g. make bench BENCH_ARGS="--rounds 5 --cpus 4")
#   make scenarios       issue 4's scenarios at full length on the debug kernel (scripts/scenarios.sh)
#   make clean

KVER ?= $(shell apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-\([0-9].*-amd64\)$$/\1/p' | head -n1)
KDIR ?= /usr/src/linux-headers-$(KVER)
PWD := $(CURDIR)
SHELL := /bin/bash

all: module check-ko

# Build with warnings as errors: anything g++, modpost or objtool prints as a warning fails.
module:
	@test -d "$(KDIR)" || scripts/setup.sh
	@test -d "$(KDIR)" || { echo "KDIR=$(KDIR) missing (scripts/setup.sh installs Debian's)" >&2; exit 1; }
	@set -o pipefail; $(MAKE) -C $(KDIR) M=$(PWD) modules 2>&1 | tee .build.log
	@if grep -Ei '(^|[^-])warning:' .build.log; then \
		echo "cxmq: the build printed warnings (above): treated as errors" >&2; exit 1; fi

check-ko: module
	@for ko in *.ko; do scripts/check-ko.sh $$ko || exit 1; done

# modules_install: $(INSTALL_MOD_PATH)/lib/modules/<kernel>/updates/cxmq.ko (then depmod, where
# the kernel tree has its System.map; Debian's headers have none: run depmod yourself)
install: all
	@$(MAKE) -C $(KDIR) M=$(PWD) INSTALL_MOD_PATH=$(INSTALL_MOD_PATH) INSTALL_MOD_DIR=updates modules_install

host-test:
	@$(MAKE) -C tests/host

test:
	@scripts/test.sh

scenarios:
	@scripts/scenarios.sh

demo:
	@scripts/demo.sh

bench:
	@scripts/bench.sh $(BENCH_ARGS)

clean:
	@if [ -d "$(KDIR)" ]; then $(MAKE) -C $(KDIR) M=$(PWD) clean; fi
	@if [ -d tests/host ]; then $(MAKE) -C tests/host clean; fi
	@rm -f .build.log

.PHONY: all module check-ko install host-test test demo bench scenarios clean
