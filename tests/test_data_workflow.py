"""The data rules through Snakemake: download (from 127.0.0.1) -> prepare_dataset -> augment_labels."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pandas as pd
import pytest
import yaml
from conftest import ROOT, run_snakemake
from test_data_download import server  # noqa: F401 (the local HTTP server fixture)
from test_data_factories import CAMUS_LABELS, write_camus_nifti


def _zip_tree(root) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(root.rglob("*")):
            if f.is_file():
                zf.write(f, f"CAMUS_public/{f.relative_to(root)}")
    return buf.getvalue()


def _config(tmp_path, url, sha):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["datasets"] = {"camus_dl": {"format": "camus", "source": {"url": url, "sha256": sha},
                                    "img_size": 16, "labels": CAMUS_LABELS, "probe": "convex"}}
    cfg["augment"]["copies"] = 2
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_download_prepare_augment_rules(server, tmp_path):  # noqa: F811
    data = _zip_tree(write_camus_nifti(tmp_path / "tree"))
    server.files["/CAMUS_public.zip"] = data
    work = tmp_path / "work"
    work.mkdir()
    good = _config(tmp_path, f"{server.url}/CAMUS_public.zip", hashlib.sha256(data).hexdigest())
    proc = run_snakemake(work, "--cores", "1", "prepare", configfile=good, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    manifest = pd.read_csv(work / "results" / "data" / "camus_dl" / "manifest.csv", dtype=str)
    assert len(manifest) == 24 and (manifest.groupby("patient_id")["split"].nunique() == 1).all()
    augmented = pd.read_csv(work / "results" / "augment" / "camus_dl" / "manifest.csv", dtype=str)
    undeformed = (augmented.sample_id == augmented.source_sample_id).sum()   # the val maps, for pairing
    assert undeformed == (manifest.split == "val").sum() > 0
    assert len(augmented) == 2 * 20 + undeformed and "test" not in set(augmented.split)
    assert (work / "results" / "raw" / "camus_dl" / "CAMUS_public" / "database_split").is_dir()

    # A wrong checksum: the rule fails with the one-line reason and leaves no raw folder.
    bad_work = tmp_path / "bad"
    bad_work.mkdir()
    bad = _config(tmp_path, f"{server.url}/CAMUS_public.zip", "0" * 64)
    proc = run_snakemake(bad_work, "--cores", "1", "prepare", configfile=bad, timeout=600)
    assert proc.returncode != 0
    log = (bad_work / "results" / "logs" / "download" / "camus_dl.log").read_text()
    assert f"error: {server.url}/CAMUS_public.zip: sha256 mismatch" in log
    assert not (bad_work / "results" / "raw" / "camus_dl").exists()
