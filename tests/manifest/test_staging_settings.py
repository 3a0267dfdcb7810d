"""The staging grace must outlast the upload idle timeout, or a sweep removes
files of uploads still in flight (a live upload writes at least once per
idle timeout, or the server closes it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from depot.services.manifest.config import ManifestSettings


def _config(tmp_path: Path, **env: str) -> ManifestSettings:
    return ManifestSettings.from_env({"DEPOT_DATA_DIR": str(tmp_path), **env})


def test_defaults_keep_an_upload_that_is_still_sending(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    assert cfg.upload_idle_timeout_s == 300
    assert cfg.staging_grace_s > cfg.upload_idle_timeout_s


@pytest.mark.parametrize(
    ("grace", "idle"),
    [("60", "300"), ("300", "300"), ("0", "1"), ("-5", "1"), ("soon", "1"), ("10", "nan")],
)
def test_a_grace_that_could_sweep_a_live_upload_is_refused(tmp_path: Path, grace: str, idle: str) -> None:
    with pytest.raises(ValueError, match="DEPOT_"):
        _config(tmp_path, DEPOT_STAGING_GRACE_S=grace, DEPOT_UPLOAD_IDLE_TIMEOUT_S=idle)
