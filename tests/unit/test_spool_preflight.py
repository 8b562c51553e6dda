"""Preflight tries the spool's directory for real: created, written, fsynced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from relay.serving.preflight import preflight
from relay.settings import Settings


def spool_settings(directory: Path) -> Settings:
    return Settings.from_mapping(
        {
            "auth": {"basic_credentials": ["ultracart:a-test-secret"]},
            "spool": {"enabled": True, "directory": str(directory)},
        }
    )


def test_a_missing_spool_directory_is_created_with_its_parents(tmp_path: Path) -> None:
    directory = tmp_path / "volume" / "spool"
    assert preflight(spool_settings(directory), env={}) == []
    assert directory.is_dir()
    assert os.listdir(directory) == []  # the probe file is gone again


def test_a_spool_directory_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    [problem] = preflight(spool_settings(tmp_path / "file" / "spool"), env={})
    assert problem.setting == "spool.directory"
    assert "cannot create" in problem.message and "file/spool" in problem.message


def test_a_failing_directory_fsync_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import relay.serving.preflight

    def failing(directory: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(relay.serving.preflight, "fsync_directory", failing)
    [problem] = preflight(spool_settings(tmp_path / "spool"), env={})
    assert (problem.setting, problem.env) == ("spool.directory", None)
    assert problem.message == (
        f"spool.directory: cannot fsync {tmp_path / 'spool'}: Input/output error"
    )
