# The censorship lab (tests/lab). Included by the top-level Makefile: `include tests/lab/lab.mk`.
# Needs root. LAB_DELAY_MS=N adds N ms per direction on the client<->ISP link (no netem needed).

LAB_PYTHON ?= .venv/bin/python

.PHONY: lab-up lab-down lab-status lab-env lab-test lab-demo-apps lab-demo-packet

lab-up:  ## start (or cleanly restart) the lab; LAB_DELAY_MS=N for extra latency
	$(LAB_PYTHON) -m tests.lab up

lab-down:  ## remove the lab's namespaces, /etc/netns entries and recorded processes
	$(LAB_PYTHON) -m tests.lab down

lab-status:  ## exit 0 only if the lab is fully up
	$(LAB_PYTHON) -m tests.lab status

lab-env:  ## the facts the probe needs (resolver, CA file, control URL, ranges, targets)
	$(LAB_PYTHON) -m tests.lab env

lab-test:  ## wire-level checks of every censor mechanism (root; reuses a running lab)
	$(LAB_PYTHON) -m pytest tests/lab -m lab -q

lab-demo-apps:  ## the app scenarios (issue 6): every lab app file from cp-client, per-host table
	$(LAB_PYTHON) -m tests.lab.demo_apps

lab-demo-packet:  ## the packet-level scenarios (issue 15): where probe packet places each censor
	$(LAB_PYTHON) -m tests.lab.demo_packet
