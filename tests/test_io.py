"""sonodiff.io: the sweep of temporaries left by killed writes, and the modes of written files
(checkpoint, model file, manifest, PNG, atomic folder) under the process's umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sonodiff.io import TEMPORARY, _umask, atomic_dir, atomic_path, sweep_stale_temporaries, write_png


def test_the_sweep_removes_only_the_temporaries_of_atomic_writes(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "model.pt") as tmp:
        made = tmp  # a real temporary's name, removed when the write fails
        raise KeyboardInterrupt
    assert TEMPORARY.match(made.name) and not made.exists()
    stale_file = tmp_path / ".step_00000008.pt.k2_9xq0a.tmp"
    stale_file.write_bytes(b"half a checkpoint")
    stale_dir = tmp_path / ".images.ab12cd34.tmp"
    (stale_dir / "sub").mkdir(parents=True)
    (stale_dir / "sub" / "a.png").write_bytes(b"png")
    kept = ["model.pt", "notes.tmp", ".notes.tmp", ".model.pt.short.tmp", ".model.pt.ABCDEFGH.tmp",
            "model.pt.ab12cd34.tmp", ".model.pt.ab12cd34.tmp.bak"]
    for name in kept:
        (tmp_path / name).write_text("a user's file")
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / ".model.pt.ab12cd34.tmp").write_text("another folder's: not swept")

    assert sweep_stale_temporaries(tmp_path) == [stale_dir, stale_file]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["inner"])
    assert (tmp_path / "inner" / ".model.pt.ab12cd34.tmp").is_file()
    assert sweep_stale_temporaries(tmp_path / "missing") == []


def test_the_umask_is_read_without_changing_it():
    mask = os.umask(0o027)
    try:
        assert _umask() == 0o027 and _umask() == 0o027
    finally:
        os.umask(mask)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)],
                         ids=["umask-022", "umask-077"])
def test_written_files_and_folders_honour_the_umask(tmp_path, mask, file_mode, dir_mode):
    import torch

    from sonodiff.contracts.manifest import write_manifest
    from sonodiff.contracts.model_file import write_model_file
    from sonodiff.train.checkpoint import save_checkpoint

    before = os.umask(mask)
    try:
        checkpoint = save_checkpoint({"step": 3, "model": {"w": torch.zeros(2)}}, tmp_path / "run" / "checkpoints")
        model = write_model_file(tmp_path / "run" / "model.pt", {"w": torch.zeros(2)}, {"kind": "test"}, {}, 3,
                                 torch.zeros(4, 4))
        write_manifest(pd.DataFrame({"sample_id": ["a"], "image": [str(tmp_path / "set" / "images" / "a.png")]}),
                       tmp_path / "set" / "manifest.csv")
        with atomic_dir(tmp_path / "set" / "images") as folder:
            write_png(folder / "a.png", np.zeros((4, 4), np.uint8))
    finally:
        os.umask(before)
    for path in (checkpoint, model, tmp_path / "set" / "manifest.csv", tmp_path / "set" / "images" / "a.png"):
        assert _mode(path) == file_mode, path
    for path in (tmp_path / "run" / "checkpoints", tmp_path / "set" / "images"):
        assert _mode(path) == dir_mode, path
    assert not list(tmp_path.rglob(".*.tmp"))
