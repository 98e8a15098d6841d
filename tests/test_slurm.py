"""The workflow on a real SLURM cluster through ``profiles/slurm`` (snakemake-executor-plugin-slurm).

``tests/cluster/start_slurm.sh`` starts a one-node SLURM on localhost (munged, slurmctld and
slurmd by hand; Debian's slurm-wlm and munge are installed when missing) with one fake GPU per CPU, and
the session fixture always stops it again with ``stop_slurm.sh``. The cluster tests skip, saying
why, only where SLURM cannot be installed or started (the script exits 77).

- The test config's whole DAG (target ``all``) on its labelled dataset alone (``config/test.yaml``
  less the unlabelled one: every rule runs, both variants) through the SLURM profile gives the
  files of the local run of the whole test config (``dag_run`` in conftest) for that dataset, every
  one equal: byte for byte, images pixel for pixel, checkpoints tensor for tensor (not their
  process RNG states), training logs but for their speed column. The tables and report pages,
  which also list the other dataset locally, exist. The two runs overlap (the SLURM one starts
  first, in the background); both wall times are printed and recorded.
  (One dataset: each SLURM job costs seconds of submission, polling and Snakemake start-up, and
  the unconditional path adds no rule the labelled one lacks.)
- A training job cancelled with ``scancel`` after it wrote a checkpoint is submitted again by
  Snakemake (``retries``) and resumes from that checkpoint.
- Without a cluster: the profile parses, asks one GPU for each GPU rule and groups the small
  CPU rules (a dry run).

The workflow (Snakefile, workflow/, config/, profiles/, src/) is copied to a scratch
folder for each run, so that jobs never touch this checkout's ``results/``.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import ROOT

CLUSTER = ROOT / "tests" / "cluster"
VENV_BIN = Path(sys.executable).parent
SNAKEMAKE = VENV_BIN / "snakemake"
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "src")
GPU_RULES = ("train_model", "sample_shard", "compute_metrics", "real_fid_stats", "train_segmenter")
SKIP_STATUS = 77                        # start_slurm.sh: SLURM cannot be installed or run here
LOCK = Path("/tmp/sonodiff-slurm.lock")  # one test cluster per machine at a time
DAG_TIMEOUT = 5400                      # seconds for the whole DAG on the cluster (2 shared cores)
# Poll fast in tests: the plugin waits this long before its first squeue, then 10 s more after
# each poll that finds no job finished (and back to this after one that does).
# The node has this machine's CPUs (start_slurm.sh): no job, group jobs included, may ask for more.
CLUSTER_ARGS = ("--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
                "--latency-wait", "5", "--slurm-keep-successful-logs", "--cores", str(len(os.sched_getaffinity(0))))
# Files that differ between two runs by nature (times, hosts, event files, provenance).
VOLATILE = re.compile(r"(^|/)(logs|benchmarks|tensorboard)/|(^|/)provenance\.(html|json)$")


# ---------------------------------------------------------------- cluster and workflow copies

@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A running one-node SLURM (node ``localhost``, partition ``sonodiff``, one fake GPU per CPU)."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = tmp_path_factory.mktemp("slurm")
        start = subprocess.run([str(CLUSTER / "start_slurm.sh"), str(state)], capture_output=True,
                               text=True, timeout=1200)
        if start.returncode == SKIP_STATUS:
            reason = (start.stderr.strip().splitlines() or ["SLURM cannot be started"])[-1]
            pytest.skip(f"no SLURM cluster: {reason}")
        try:
            assert start.returncode == 0, start.stdout + start.stderr
            yield state
        finally:
            subprocess.run([str(CLUSTER / "stop_slurm.sh"), str(state)], capture_output=True, timeout=120)


def copy_workflow(dst: Path) -> Path:
    """This repository's workflow files in ``dst`` (no results, caches or metadata)."""
    dst.mkdir(parents=True, exist_ok=True)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake", "results")
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=skip)
        else:
            shutil.copy2(src, dst / name)
    return dst


def job_env() -> dict[str, str]:
    """Environment of a Snakemake run: the project's venv first on PATH (SLURM jobs inherit it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SNAKEMAKE_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    return env


def snakemake_cmd(workdir: Path, profile: str, *args: str, timeout: int = DAG_TIMEOUT) -> list[str]:
    """Snakemake with a profile of the copied workflow, wrapped in ``timeout`` (a stuck run ends)."""
    return ["timeout", "-k", "30", str(timeout), str(SNAKEMAKE), "--profile",
            str(workdir / "profiles" / profile), "--directory", str(workdir),
            "--snakefile", str(workdir / "Snakefile"), *args]


def failure(output: str, workdir: Path, cluster: Path) -> str:
    """What to show when a run failed: its output, the newest SLURM job logs, slurmctld's log."""
    text = output[-6000:]
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
    for log in [*logs[-3:], cluster / "log" / "slurmctld.log"]:
        if log.is_file():
            text += f"\n--- {log}\n" + log.read_text(errors="replace")[-2000:]
    return text


def snakemake_wall_time(workdir: Path) -> float:
    """Wall time of the last Snakemake run in ``workdir``: from the start time in its log's name
    (``.snakemake/log/<start>.snakemake.log``) to the log's last write."""
    log = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))[-1]
    started = datetime.strptime(log.name.removesuffix(".snakemake.log"), "%Y-%m-%dT%H%M%S.%f")
    return log.stat().st_mtime - started.timestamp()


#: The dataset of the test config that the SLURM run keeps (labelled: every rule runs for it).
CLUSTER_DATASET = "tiny_camus"


def one_dataset_config(src: Path, dst: Path, dataset: str) -> Path:
    """``src`` (a config file) with ``dataset`` as its only dataset, written to ``dst``."""
    import yaml

    config = yaml.safe_load(src.read_text())
    config["datasets"] = {dataset: config["datasets"][dataset]}
    dst.write_text(yaml.safe_dump(config, sort_keys=False))
    return dst


@pytest.fixture(scope="session")
def cluster_run(slurm_cluster, tmp_path_factory):
    """The test config's DAG on :data:`CLUSTER_DATASET` through profiles/slurm, started in the
    background so that the local run (``dag_run``, set up after this fixture) overlaps its job
    submissions and polling; calling the fixture's value waits for it: (workdir, seconds)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm_dag"))
    config = one_dataset_config(workdir / "config" / "test.yaml", workdir / "config" / "test_one.yaml", CLUSTER_DATASET)
    out_path = workdir.parent / "slurm_dag.out"
    with open(out_path, "w") as out:
        start = time.monotonic()
        proc = subprocess.Popen(snakemake_cmd(workdir, "slurm", *CLUSTER_ARGS, "--configfile", str(config)),
                                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=job_env())

        @functools.cache
        def finished() -> tuple[Path, float]:
            rc = proc.wait()  # snakemake_cmd's `timeout` ends a stuck run
            seconds = time.monotonic() - start
            assert rc == 0, failure(out_path.read_text(), workdir, slurm_cluster)
            return workdir, seconds

        try:
            yield finished
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------- comparisons

def result_files(workdir: Path) -> set[str]:
    """Output files under results/, relative, without the ones that differ by nature."""
    root = workdir / "results"
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not VOLATILE.search(p.relative_to(root).as_posix())}


def tensors(obj, path: str = ""):
    """(path, tensor) of every tensor in a loaded checkpoint, without process RNG states."""
    import torch

    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key != "rng":
                yield from tensors(value, f"{path}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from tensors(value, f"{path}[{i}]")


def same_content(a: Path, b: Path) -> bool:
    """Equal outputs: images pixel for pixel, checkpoints tensor for tensor, training logs but for
    their speed column, every other file byte for byte."""
    import torch

    if a.suffix == ".png":
        return np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    if a.suffix == ".pt":
        ta, tb = (dict(tensors(torch.load(p, map_location="cpu", weights_only=True))) for p in (a, b))
        return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    if a.name == "train_log.csv":
        speed = ["images_per_s"]
        return pd.read_csv(a).drop(columns=speed).equals(pd.read_csv(b).drop(columns=speed))
    return a.read_bytes() == b.read_bytes()


# ---------------------------------------------------------------- tests

def test_slurm_profile_requests_gpus_and_groups_small_rules(tmp_path):
    """A dry run through the profile (no cluster needed): GPU rules get gpu=1, data rules are grouped."""
    workdir = copy_workflow(tmp_path / "wf")
    proc = subprocess.run(snakemake_cmd(workdir, "slurm", "-n", timeout=300), cwd=workdir, capture_output=True,
                          text=True, env=job_env())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Group job data" in out, out[-4000:]
    jobs = re.split(r"\n\s*(?:local)?rule ", out)
    for rule in GPU_RULES:
        blocks = [b for b in jobs if b.startswith(f"{rule}:")]
        assert blocks, f"{rule} not in the DAG"
        assert all(re.search(r"\bgpu=1\b", b) for b in blocks), f"{rule} does not ask for a GPU"
    for rule in ("simulate_phantom", "prepare_dataset", "augment_labels"):
        assert all(re.search(r"\bgpu=1\b", b) is None for b in jobs if b.startswith(f"{rule}:"))


@pytest.mark.slow
@pytest.mark.timeout(3 * DAG_TIMEOUT)
def test_slurm_run_gives_the_local_outputs(cluster_run, dag_run, record_property):
    workdir, cluster_seconds = cluster_run()
    local_seconds = snakemake_wall_time(dag_run)
    record_property("slurm_seconds", round(cluster_seconds, 1))
    record_property("local_seconds", round(local_seconds, 1))
    print(f"\nwhole DAG, test config: SLURM {cluster_seconds:.0f} s ({CLUSTER_DATASET} only), "
          f"local {local_seconds:.0f} s (both datasets), the two at the same time")

    ours, theirs = result_files(workdir), result_files(dag_run)
    mine = re.compile(rf"(^|/){CLUSTER_DATASET}(/|\.|_|$)")
    scoped = {f for f in theirs if mine.search(f)} | {"metrics/weights.json"}
    global_files = {f for f in theirs if f not in scoped and not re.search(r"(^|/)tiny_", f)}
    assert scoped <= ours, f"missing on SLURM: {sorted(scoped - ours)[:10]}"
    assert global_files <= ours, f"missing on SLURM: {sorted(global_files - ours)[:10]}"
    assert not ours - scoped - global_files, f"only on SLURM: {sorted(ours - scoped - global_files)[:10]}"
    for kind in ("manifest.csv", ".png", "model.pt", ".json"):
        assert any(f.endswith(kind) for f in scoped), f"no {kind} written"
    differing = [f for f in sorted(scoped) if not same_content(workdir / "results" / f, dag_run / "results" / f)]
    assert not differing, f"{len(differing)} of {len(scoped)} outputs differ, e.g. {differing[:10]}"

    # The GPU rules went to SLURM with a GPU (the fake one); the data rules as one group job, the exports too.
    slurm_logs = workdir / ".snakemake" / "slurm_logs"
    for rule in GPU_RULES:
        assert list(slurm_logs.glob(f"rule_{rule}/**/*.log")), f"no SLURM job for {rule}"
    assert len(list(slurm_logs.glob("group_data*/**/*.log"))) == 1
    assert len(list(slurm_logs.glob("group_export*/**/*.log"))) == 1


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_cancelled_training_resumes_from_its_checkpoint(slurm_cluster, tmp_path):
    dataset, variant, steps = "tiny_camus", "bmaps", 300
    workdir = copy_workflow(tmp_path / "wf")
    # The test config's tiny model, trained 300 steps (about ten seconds) with a checkpoint every
    # 10, so that one exists early and the job is still running when it is cancelled.
    config = workdir / "config" / "test.yaml"
    text = config.read_text()
    text, n_steps = re.subn(r"(?m)^(train:\n  steps:)\s*\d+", rf"\1 {steps}", text)
    text, n_every = re.subn(r"(?m)^(  checkpoint_every:)\s*\d+", r"\1 10", text)
    assert n_steps == n_every == 1
    config.write_text(text)
    model_dir = workdir / "results" / "models" / dataset / variant
    target = f"results/models/{dataset}/{variant}/model.pt"
    cmd = snakemake_cmd(workdir, "slurm", *CLUSTER_ARGS, "--configfile", str(config), "--", target, timeout=1500)
    out_path = tmp_path / "snakemake.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=job_env())
        try:
            deadline = time.monotonic() + 1200
            while not list((model_dir / "checkpoints").glob("step_*.pt")):
                assert proc.poll() is None, failure(out_path.read_text(), workdir, slurm_cluster)
                assert time.monotonic() < deadline, "no checkpoint after 20 minutes"
                time.sleep(0.2)
            queue = subprocess.run(["squeue", "-h", "-o", "%i|%k|%T"], capture_output=True, text=True).stdout
            training = [line.split("|")[0] for line in queue.splitlines()
                        if line.split("|")[1].startswith("rule_train_model") and line.endswith("|RUNNING")]
            assert len(training) == 1, queue
            subprocess.run(["scancel", training[0]], check=True)
            assert not (model_dir / "model.pt").exists(), "training finished before it could be cancelled"
            rc = proc.wait(timeout=1500)
        finally:
            if proc.poll() is None:
                proc.kill()
    output = out_path.read_text()
    assert rc == 0, failure(output, workdir, slurm_cluster)
    assert f"SLURM-job '{training[0]}' failed, SLURM status is: 'CANCELLED'" in output, output[-4000:]
    resubmitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: \S*rule_train_model", output)
    assert len(resubmitted) == 2 and resubmitted[0] == training[0], output[-4000:]
    log = (workdir / "results" / "logs" / "train_model" / dataset / f"{variant}.log").read_text(errors="replace")
    resumed = re.search(rf"resuming from \S*step_(\d+)\.pt \(step (\d+) of {steps}\)", log)
    assert resumed, log[-3000:]
    assert int(resumed.group(2)) >= 10
    import torch

    assert torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)["step"] == steps
