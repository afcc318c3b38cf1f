"""The rules terraform/check enforces are the ones we mean, and it can be run from pytest.

`make test` runs terraform/check itself (fmt, validate, terraform test, checkov); so that
checkov does not run twice, the test that runs the whole script here is opt-in
(TERRAFORM_CHECK=1) and marked slow. The fast tests hold the conventions the script relies on.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
TF_FILES = sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)
SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def test_every_checkov_skip_is_inline_with_a_reason() -> None:
    skips = []
    for path in TF_FILES:
        for line in path.read_text().splitlines():
            if match := SKIP.search(line):
                check, reason = match.groups()
                assert re.fullmatch(r"CKV2?_GCP_\d+", check), f"{path}: {line.strip()}"
                assert reason and len(reason.split()) >= 6, f"{path}: skip without a reason"
                skips.append(check)
    assert len(skips) == len(set(skips)), "one skip per check and resource"


def test_checkov_config_skips_nothing_globally() -> None:
    config = (TERRAFORM / ".checkov.yaml").read_text()
    assert "skip-check" not in config
    assert "soft-fail" not in config


def test_checkov_is_pinned_to_a_bounded_range() -> None:
    pins = [
        line
        for line in (TERRAFORM / "requirements-checks.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert pins and all(re.search(r">=[\d.]+,\s*<[\d.]+", pin) for pin in pins), pins


def test_check_script_fails_fast() -> None:
    script = TERRAFORM / "check"
    assert os.access(script, os.X_OK)
    assert "set -euo pipefail" in script.read_text()


def test_every_module_has_the_standard_files() -> None:
    for module in sorted((TERRAFORM / "modules").iterdir()):
        names = {p.name for p in module.iterdir()}
        missing = {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} - names
        assert not missing, f"{module.name} lacks {sorted(missing)}"


def test_every_variable_and_output_is_described() -> None:
    block = re.compile(r'^(variable|output) "(\w+)" \{\n(.*?)^\}', re.M | re.S)
    for path in TF_FILES:
        for kind, name, body in block.findall(path.read_text()):
            assert re.search(r"^\s+description\s*=", body, re.M), f"{path}: {kind} {name}"
            if kind == "variable":
                assert re.search(r"^\s+type\s*=", body, re.M), f"{path}: variable {name} untyped"
