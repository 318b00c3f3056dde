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
