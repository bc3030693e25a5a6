"""Loaded by Python at start-up in test subprocesses: refuse non-loopback traffic."""

import netguard_rules

netguard_rules.install()
