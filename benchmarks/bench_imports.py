"""Import cost of every rule script and package: what a job pays before it does any work.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_imports.py [--repeat 3] [--json out.json]
        [--only TEXT] [--baseline TREE]

For each rule script in ``workflow/scripts/`` the script's top-level ``import`` statements (not
its ``run_rule`` call) run in a fresh interpreter; for each package or module of ``src/sonodiff``
``import sonodiff.<name>`` does; ``sonodiff --help`` runs the CLI's parser. Each is timed over
``--repeat`` fresh interpreters (the median wall time of the import itself, interpreter start-up
excluded) and reports which heavy libraries (:data:`HEAVY`) ended up in ``sys.modules``. Only
the imports are measured: a job that builds a diffusion network (``sonodiff.models``) or a metric
network loads MONAI, torchvision... when it does, which is where that cost belongs.

Prints one table (Markdown) and, with ``--json``, writes the figures. Wall times depend on the
machine's load and its file cache: compare runs made side by side. ``--baseline TREE`` measures
another checkout too (e.g. ``git archive HEAD | tar -x -C /tmp/base``: its scripts, its
``src`` first on ``PYTHONPATH``), each of its interpreters right after the same one of this tree,
so both columns see the same load.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Libraries whose import costs a job noticeable time (or memory); ``torch`` for reference.
HEAVY = ("torch", "torch._dynamo", "torchvision", "monai", "torchio", "torchmetrics", "lpips", "pytorch_fid",
         "scipy", "skimage", "matplotlib", "pandas", "tensorboard", "SimpleITK", "nibabel", "pymust", "tqdm")

_PROBE = """
import json, sys, time
t0 = time.perf_counter()
exec(compile({code!r}, "<imports>", "exec"), {{"__name__": "__probe__"}})
wall = time.perf_counter() - t0
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"wall_s": wall, "heavy": heavy}}))
"""


def script_imports(path: str | Path) -> str:
    """The top-level import statements of a rule script, as source code, after what Snakemake's
    preamble does: the script's own folder appended to the search path (for ``sonodiff_path``)."""
    tree = ast.parse(Path(path).read_text())
    nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    preamble = f"import sys\nsys.path.append({str(Path(path).resolve().parent)!r})"
    return "\n".join([preamble, *(ast.unparse(n) for n in nodes)])


def probe(code: str, tree: Path = ROOT) -> dict:
    """Run ``code`` in a fresh interpreter on ``tree``'s package: ``{"wall_s": import seconds,
    "heavy": [heavy modules loaded]}``."""
    env = dict(os.environ)
    if tree != ROOT:
        env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(code=code, heavy=HEAVY)], capture_output=True,
                          text=True, cwd=tree, env=env)
    if proc.returncode:
        raise RuntimeError(f"import failed:\n{code}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    """Median import wall time of fresh-interpreter runs, and the heavy modules of the last."""
    return {"wall_s": round(statistics.median(r["wall_s"] for r in runs), 3), "heavy": runs[-1]["heavy"]}


def targets(tree: Path = ROOT) -> dict[str, str]:
    """Name -> import code: every rule script, every package or module of sonodiff, the CLI's --help."""
    scripts = [p for p in sorted((tree / "workflow" / "scripts").glob("*.py")) if p.stem != "sonodiff_path"]
    out = {f"rule {p.stem}": script_imports(p) for p in scripts}
    for p in sorted((tree / "src" / "sonodiff").iterdir()):
        if p.name.startswith("_") or not (p.suffix == ".py" or (p / "__init__.py").is_file()):
            continue
        out[f"import sonodiff.{p.stem}"] = f"import sonodiff.{p.stem}"
    out["sonodiff --help"] = ("import contextlib, io\nfrom sonodiff.cli import main\n"
                              "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
                              "    main(['--help'])")
    return out


def _heavy(fig: dict | None) -> str:
    return "(absent)" if fig is None else ", ".join(fig["heavy"]) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh interpreters per target (median)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--only", help="only targets whose name contains this text")
    parser.add_argument("--baseline", type=Path, help="another repository tree to measure side by side")
    args = parser.parse_args()
    ours = targets()
    theirs = targets(args.baseline.resolve()) if args.baseline else {}
    names = [n for n in dict.fromkeys([*theirs, *ours]) if not args.only or args.only in n]
    figures: dict[str, dict] = {}
    if args.baseline:
        print("| target | baseline s | baseline heavy modules | import s | heavy modules loaded |\n"
              "| --- | ---: | --- | ---: | --- |")
    else:
        print("| target | import s | heavy modules loaded |\n| --- | ---: | --- |")
    for name in names:
        runs: dict[str, list[dict]] = {"baseline": [], "tree": []}
        for _ in range(args.repeat):
            if name in theirs:
                runs["baseline"].append(probe(theirs[name], args.baseline.resolve()))
            if name in ours:
                runs["tree"].append(probe(ours[name]))
        fig = {k: summarize(v) for k, v in runs.items() if v}
        figures[name] = fig
        now = f"{fig['tree']['wall_s']:.2f}" if "tree" in fig else ""
        if args.baseline:
            base = f"{fig['baseline']['wall_s']:.2f}" if "baseline" in fig else ""
            print(f"| {name} | {base} | {_heavy(fig.get('baseline'))} | {now} | {_heavy(fig.get('tree'))} |", flush=True)
        else:
            print(f"| {name} | {now} | {_heavy(fig.get('tree'))} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
