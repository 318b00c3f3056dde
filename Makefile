# Top-level Makefile of the IOC-embedded Channel Access gateway module.
TOP = .
include $(TOP)/configure/CONFIG

DIRS += configure
DIRS += gatewayApp
gatewayApp_DEPEND_DIRS = configure
DIRS += iocBoot
iocBoot_DEPEND_DIRS = gatewayApp
DIRS += bench
bench_DEPEND_DIRS = gatewayApp

include $(TOP)/configure/RULES_TOP

# `make fuzz [FUZZ_SECONDS=600]`: the codec's libFuzzer target (ASan+UBSan)
# for a bounded time; see gatewayApp/fuzz/README.md.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz:
	$(TOP)/scripts/fuzz $(FUZZ_SECONDS)
