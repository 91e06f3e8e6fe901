"""The session's shared smoke pipeline (shared_builds.py): built once, by whichever process takes the lock first;
a build that failed is built again by the next to need it, from an empty folder."""
from __future__ import annotations

import pytest
import shared_builds


def test_a_failed_shared_build_is_built_again_by_the_next_to_need_it_and_a_finished_one_never(tmp_path):
    calls = []

    def failing(folder):
        folder.mkdir()
        (folder / "half").write_text("x")
        calls.append("failed")
        raise RuntimeError("the build failed")

    def build(folder):
        assert not folder.exists()  # the failed build's half is gone
        (folder / "run").mkdir(parents=True)
        (folder / "run" / "table.csv").write_text("a\n1\n")
        calls.append("built")
        return folder / "run"

    with pytest.raises(RuntimeError, match="the build failed"):
        shared_builds.built_once(tmp_path, failing, "thing")
    held = []
    result, stamps = shared_builds.built_once(tmp_path, build, "thing", locked=lambda: held.append(True))
    assert result == tmp_path / "thing" / "run" and list(stamps) == ["table.csv"] and held == [True]
    assert stamps["table.csv"].split()[0] == "4"  # its size, then its time
    assert shared_builds.built_once(tmp_path, failing, "thing") == (result, stamps)  # built: read, not built again
    assert calls == ["failed", "built"]
