"""The ways the workflow is deployed: the two Snakefiles, a Snakemake module, rule scripts without
PYTHONPATH (how --use-conda runs them), a non-editable install, and snakefmt's layout."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SNAKEMAKE, TEST_CONFIG

SCRIPTS = sorted(p for p in (ROOT / "workflow" / "scripts").glob("*.py") if p.stem != "sonodiff_path")
#: This test interpreter's site-packages: the dependencies a bare interpreter borrows (sonodiff's
#: own editable-install hook is a .pth file there, which a path entry does not run).
SITE_PACKAGES = sysconfig.get_paths()["purelib"]


def bare_env() -> dict:
    """The environment of a conda job: no PYTHONPATH (Snakemake deletes it), one thread."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}


def bare_interpreter(folder: Path) -> Path:
    """A fresh venv that sees this environment's dependencies but has no sonodiff."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(SITE_PACKAGES + "\n")
    return python


def test_both_snakefiles_build_the_dag(tmp_path):
    """The top-level Snakefile includes workflow/Snakefile (and names its default target, which an
    include does not carry); either one runs, from any working directory, with the default config."""
    code = [line for line in (ROOT / "Snakefile").read_text().splitlines() if line and not line.startswith("#")]
    assert code[0] == 'include: "workflow/Snakefile"' and "rules.all.input," in code[-1]
    for snakefile in (ROOT / "Snakefile", ROOT / "workflow" / "Snakefile"):
        proc = subprocess.run([SNAKEMAKE, "-s", str(snakefile), "-n", "--quiet", "rules"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, env=bare_env())
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "train_model" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_workflow_runs_as_a_module_from_another_folder(tmp_path):
    """`module ... snakefile:` from a user's own project: paths resolve from the module's files."""
    (tmp_path / "Snakefile").write_text(
        f'configfile: "{TEST_CONFIG}"\n\n\n'
        f'module sonodiff:\n    snakefile:\n        "{ROOT}/workflow/Snakefile"\n    config:\n        config\n\n\n'
        "use rule * from sonodiff as sonodiff_*\n"
    )
    proc = subprocess.run([SNAKEMAKE, "-n", "--cores", "1", "--quiet", "rules"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=bare_env())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "sonodiff_train_model" in out and "sonodiff_compute_metrics" in out


def test_rule_scripts_import_sonodiff_without_pythonpath(tmp_path):
    """Every rule script, run as --use-conda runs it (a copy of the script in .snakemake/scripts,
    its own folder appended to sys.path, no PYTHONPATH, no sonodiff installed), imports sonodiff
    from this checkout and gets as far as its main()."""
    python = bare_interpreter(tmp_path / "bare")
    absent = subprocess.run([str(python), "-c", "import sonodiff"], cwd=tmp_path, env=bare_env(),
                            capture_output=True, text=True)
    assert absent.returncode != 0 and "No module named 'sonodiff'" in absent.stderr
    for script in SCRIPTS:  # each script's first statement after its docstring is the import
        body = [line for line in script.read_text().split('"""', 2)[2].splitlines() if line.strip()]
        assert body[0].startswith("import sonodiff_path"), script.name
    # One interpreter runs every script in turn (torch is imported once); between scripts sonodiff
    # is forgotten and the search path restored, so each script has to find sonodiff by itself.
    driver = tmp_path / "drive.py"
    driver.write_text(f"""
import runpy, sys, types
from pathlib import Path
scripts, copies, root = {[str(s) for s in SCRIPTS]!r}, Path({str(tmp_path / "copies")!r}), {str(ROOT)!r}
copies.mkdir()
clean_path = list(sys.path)
for script in scripts:
    for name in [m for m in sys.modules if m == "sonodiff" or m.startswith("sonodiff.") or m == "sonodiff_path"]:
        del sys.modules[name]
    sys.path[:] = clean_path + [str(Path(script).parent)]   # Snakemake's preamble: the script's folder
    copy = copies / ("tmp." + Path(script).name)
    copy.write_text(Path(script).read_text())
    log = copies / (Path(script).stem + ".log")
    smk = types.SimpleNamespace(log=[str(log)], threads=1)   # no input: main() fails at its first use
    try:
        runpy.run_path(str(copy), init_globals={{"snakemake": smk}}, run_name="__main__")
    except (AttributeError, SystemExit):
        pass
    origin = sys.modules["sonodiff"].__file__ if "sonodiff" in sys.modules else None
    print(Path(script).stem, origin, "in main" in log.read_text() and "has no attribute" in log.read_text())
""")
    proc = subprocess.run([str(python), str(driver)], cwd=tmp_path, env=bare_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert [r[0] for r in rows] == [s.stem for s in SCRIPTS]
    for name, origin, reached_main in rows:
        assert origin == str(ROOT / "src" / "sonodiff" / "__init__.py"), (name, origin)
        assert reached_main == "True", (name, (tmp_path / "copies" / f"{name}.log").read_text()[-2000:])


def test_a_non_editable_install_validates_a_config(tmp_path):
    """The package built as a wheel and installed: the schema ships inside it."""
    build = tmp_path / "build"
    for item in ("pyproject.toml", "README.md", "LICENSE", "src"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, build / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (build / item).parent.mkdir(parents=True, exist_ok=True)
            (build / item).write_bytes(src.read_bytes())
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), str(build)], check=True, capture_output=True, env=bare_env())
    python = bare_interpreter(tmp_path / "venv")
    (wheel,) = wheels.glob("sonodiff-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, env=bare_env())
    check = (
        "import sys, sonodiff, sonodiff.config as c\n"
        f"cfg = c.load_config({str(ROOT / 'config' / 'config.yaml')!r})\n"
        "print(sonodiff.__file__, c.SCHEMA_PATH.is_file(), sorted(cfg['datasets']))\n"
    )
    proc = subprocess.run([str(python), "-c", check], cwd=tmp_path, env=bare_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    origin, schema_found, datasets = proc.stdout.split(maxsplit=2)
    assert Path(origin).is_relative_to(tmp_path / "venv") and schema_found == "True"
    assert "phantom_camus" in datasets
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {stpes: 3}\n")
    proc = subprocess.run([str(python), "-c", f"import sonodiff.config as c; c.load_config({str(bad)!r})"],
                          cwd=tmp_path, env=bare_env(), capture_output=True, text=True)
    assert "train.stpes: unknown key" in proc.stderr


@pytest.mark.parametrize("tool", ["snakefmt"])
def test_snakemake_files_are_formatted(tool):
    """snakefmt (black's layout for Snakemake files) leaves every Snakemake file unchanged."""
    files = [ROOT / "Snakefile", ROOT / "workflow" / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    proc = subprocess.run([str(Path(sys.executable).with_name(tool)), "--check", *map(str, files)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- conda environments

def _imported_names(path: Path):
    """Every module name a file imports, at any depth (lazy imports in functions included)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _package_file(name: str) -> Path | None:
    path = ROOT.joinpath("src", *name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules a rule script can reach: its imports and, through sonodiff,
    those of every sonodiff module it imports, transitively (an over-approximation: a lazy
    import counts even on a path the rule never takes)."""
    seen, found, todo = set(), set(), [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported_names(path):
            top = name.partition(".")[0]
            if top == "sonodiff":  # the module and the packages above it (their __init__ runs too)
                parts = name.split(".")
                todo += [f for f in (_package_file(".".join(parts[:k])) for k in range(1, len(parts) + 1)) if f]
            elif top != "sonodiff_path" and top not in sys.stdlib_module_names:
                found.add(top)
    return found


def rule_environments() -> dict[str, set[str]]:
    """Conda environment name -> the rule scripts that run in it (from the rule files)."""
    uses: dict[str, set[str]] = {}
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule |localrule )", smk.read_text()):
            env, script = re.search(r'env\("(\w+)"\)', block), re.search(r'"\.\./scripts/(\w+)\.py"', block)
            if env and script:
                uses.setdefault(env.group(1), set()).add(script.group(1))
    return uses


def env_pins(name: str) -> dict[str, str]:
    """Distribution (normalised name) -> version pinned in workflow/envs/<name>.yaml's pip list."""
    spec = yaml.safe_load((ROOT / "workflow" / "envs" / f"{name}.yaml").read_text())
    (pip,) = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict)]
    return dict((_normal(n), v) for n, _, v in (p.partition("==") for p in pip))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_each_conda_env_provides_what_its_rule_scripts_import():
    """A job under --use-conda has only its environment's packages: each must hold every
    distribution its rules' scripts import, at the version requirements.lock pins."""
    from importlib.metadata import packages_distributions

    distributions = packages_distributions()
    lock = dict((_normal(n), v) for n, _, v in (line.partition("==") for line in
                (ROOT / "requirements.lock").read_text().split()))
    uses = rule_environments()
    assert set(uses) == {p.stem for p in (ROOT / "workflow" / "envs").glob("*.yaml")}
    for env, scripts in sorted(uses.items()):
        pins = env_pins(env)
        assert {d: v for d, v in pins.items() if lock.get(d) != v} == {}, f"{env}.yaml pins differ from the lock"
        needed = {_normal(d) for s in scripts for m in third_party_imports(ROOT / "workflow" / "scripts" / f"{s}.py")
                  for d in distributions.get(m, [m])}
        assert needed - set(pins) == set(), f"workflow/envs/{env}.yaml lacks what {sorted(scripts)} import"
