# Lab internet targets, included by the top-level Makefile and also usable
# alone from the repository root as `make -f lab/lab.mk lab-up LAB=DIR`.
# The logic lives in lab/up.sh and lab/down.sh; see lab/README.md.
#
#   make lab-up LAB=DIR [LAB_PORT_OFFSET=N]   generate and start the lab in DIR
#   make lab-down LAB=DIR                     stop the processes lab-up started

LAB_PORT_OFFSET ?= 0
# Directory of this file, so the targets work from any including Makefile.
LAB_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: lab-up lab-down

lab-up:
	@test -n "$(LAB)" || { echo "lab-up: set LAB=DIR, the lab directory" >&2; exit 2; }
	bash $(LAB_MK_DIR)/up.sh "$(LAB)" "$(LAB_PORT_OFFSET)"

lab-down:
	@test -n "$(LAB)" || { echo "lab-down: set LAB=DIR, the lab directory" >&2; exit 2; }
	bash $(LAB_MK_DIR)/down.sh "$(LAB)"
