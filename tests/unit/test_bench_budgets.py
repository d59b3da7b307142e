"""The bench's budget rows and its Terraform peer's setup, without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import budgets, terraform


def test_a_budget_row_says_met_or_missed() -> None:
    assert budgets.line(budgets.at_most("spawn", 99.4, 100, " ms")) == "| spawn | 99 ms | ≤ 100 ms | met |"
    assert budgets.verdict(budgets.at_most("spawn", 101, 100, " ms")) == "**missed**"


def test_a_row_that_could_not_be_measured_says_why() -> None:
    row = budgets.skipped("peer", "≤ 0.1 s", "Terraform not run: no pip")

    assert budgets.line(row) == "| peer | — (Terraform not run: no pip) | ≤ 0.1 s | not measured |"


def test_terraform_not_in_the_cache_is_unavailable_without_a_download(tmp_path: Path) -> None:
    with pytest.raises(terraform.Unavailable, match="not installed"):
        terraform.install(tmp_path, download=False)


def test_the_terraform_configuration_has_the_benchmarks_shape() -> None:
    hcl = terraform.configuration(95)  # rounded up to ten groups of ten, as bench.workload does

    assert 'resource "null_resource" "vpc" {\n  count    = 10\n' in hcl
    assert "count    = 40\n  triggers = { vpc = null_resource.vpc[floor(count.index / 4)].id }" in hcl
    assert 'resource "null_resource" "bucket" {\n  count    = 50\n' in hcl


def test_terraform_is_kept_offline(tmp_path: Path) -> None:
    env = terraform.Terraform(tmp_path / "terraform", tmp_path / "mirror").environment(tmp_path)

    assert env["CHECKPOINT_DISABLE"] == "1"
    config = Path(env["TF_CLI_CONFIG_FILE"]).read_text()
    assert f'filesystem_mirror {{\n    path = "{tmp_path / "mirror"}"' in config
