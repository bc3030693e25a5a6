"""The suite runs offline: only loopback traffic is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import netguard_rules
import pytest

from kb.offline import OFFLINE_ENVIRONMENT
from tests.conftest import ROOT


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.53"])
def test_guard_allows_loopback(host):
    netguard_rules.check_address((host, 80))


@pytest.mark.parametrize("host", ["192.0.2.10", "huggingface.co", "10.0.0.1"])
def test_guard_rejects_other_hosts(host):
    before = list(netguard_rules.attempts)
    with pytest.raises(netguard_rules.NetworkAccessError):
        netguard_rules.check_address((host, 443))
    netguard_rules.attempts[:] = before  # a deliberate check, not a leak


def test_importing_kb_sets_offline_environment():
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENVIRONMENT}
    script = "import json, os, kb; print(json.dumps(dict(os.environ)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(result.stdout)
    for name, value in OFFLINE_ENVIRONMENT.items():
        assert seen[name] == value


def test_llama_index_has_no_hosted_defaults():
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core.llms import MockLLM

    import kb.vectors  # noqa: F401

    assert isinstance(LlamaSettings.llm, MockLLM)
