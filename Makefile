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

# `make fuzz [FUZZ_SECONDS=600] [FUZZ_TARGET=pvlist]`: a libFuzzer target
# (ASan+UBSan), the codec's by default, for a bounded time; see
# gatewayApp/fuzz/README.md.
FUZZ_SECONDS ?= 60
FUZZ_TARGET ?= codec
.PHONY: fuzz
fuzz:
	$(TOP)/scripts/fuzz --target $(FUZZ_TARGET) $(FUZZ_SECONDS)
