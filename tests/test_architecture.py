"""The package's layering (docs/architecture.md) and the single owner of every contract file name.

Walks every import in ``src/sonodiff`` (function-level imports included) and every string
literal in the package, the rule files and the rule scripts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT

SRC = ROOT / "src" / "sonodiff"
DOC = ROOT / "docs" / "architecture.md"
STAGE_LAYER = "stage"


def layer_table() -> list[tuple[str, list[str]]]:
    """(layer, components) rows of the architecture document's layer table, lowest first."""
    text = DOC.read_text()
    start = text.index("<!-- layers:")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("layer", "---"):
            continue
        rows.append((cells[0], re.findall(r"`([a-z_]+)`", cells[1])))
    return rows


def component_of(module: str) -> str:
    """``sonodiff.train.loop`` -> ``train``; ``sonodiff`` itself -> ``sonodiff``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, imported sonodiff module) of every import statement in a file, relative ones resolved.

    ``module`` is the file's dotted name (found from its path under ``src/`` when not given).
    """
    tree = ast.parse(path.read_text())
    here = module or module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("sonodiff")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("sonodiff"):
                if target == package or target == "sonodiff":  # from . import x, from sonodiff import x
                    found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
                else:
                    found.append((node.lineno, target))
    return found


def package_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_layer_table_covers_every_component():
    listed = [c for _, comps in layer_table() for c in comps]
    assert len(listed) == len(set(listed)), "a module is listed in two layers"
    present = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert present == set(listed), f"not in the layer table: {sorted(present - set(listed))}; " \
                                   f"listed but absent: {sorted(set(listed) - present)}"


def test_imports_follow_the_layers():
    rank = {comp: i for i, (_, comps) in enumerate(layer_table()) for comp in comps}
    layer = {comp: name for name, comps in layer_table() for comp in comps}
    bad = []
    for path in package_files():
        own = component_of(module_name(path))
        if own == "sonodiff":
            continue
        for line, target in imports_of(path):
            other = component_of(target)
            if other in (own, "sonodiff"):
                continue
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if rank[other] > rank[own]:
                bad.append(f"{where} ({layer[own]} may not import {layer[other]})")
            elif layer[own] == layer[other] == STAGE_LAYER:
                bad.append(f"{where} (a stage imports another stage's internals)")
    assert not bad, "\n".join(bad)


def test_the_import_walker_sees_function_level_and_relative_imports(tmp_path):
    """The checker itself: imports inside functions and relative imports are resolved."""
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom . import figures\n\ndef f():\n    from sonodiff.train.loop import train\n"
                     "    from ..sample import load\n")
    found = [t for _, t in imports_of(probe, module="sonodiff.report.probe")]
    assert found == ["sonodiff.report.figures", "sonodiff.train.loop", "sonodiff.sample"]


# ---------------------------------------------------------------------------- contract file names

def contract_file_names() -> list[str]:
    from sonodiff.contracts import layout

    names = [layout.MANIFEST, layout.DATASET_INFO, layout.SECTOR, layout.MODEL, layout.TRAIN_LOG,
             layout.SAMPLE_PLAN, layout.SNAPSHOTS, layout.REAL_FID_STATS, layout.WEIGHTS_STATUS,
             layout.SEGMENT_RECORD, layout.PREDICTIONS, layout.LEAKAGE_REPORT]
    return sorted(set(names))


def spells_a_contract(text: str, names: list[str]) -> str | None:
    for name in names:
        if re.search(r"(?:^|[/\\])" + re.escape(name) + r"$", text) or re.search(
                r"(?:^|[/\\])" + re.escape(name) + r"[/\\]", text):
            return name
    return None


def docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def python_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant that is not a docstring (f-string pieces included)."""
    tree = ast.parse(path.read_text())
    skip = docstring_nodes(tree)
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip]


def snakemake_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every quoted string in a Snakemake file, comments left out."""
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith(('"', "'")) else line
        out += [(i, m.group(2)) for m in re.finditer(r"(['\"])(.*?)\1", code)]
    return out


def test_no_contract_file_name_outside_the_contracts_layer():
    names = contract_file_names()
    files = [p for p in package_files() if "contracts" not in p.relative_to(SRC).parts]
    files += sorted((ROOT / "workflow" / "scripts").glob("*.py"))
    smk = sorted((ROOT / "workflow" / "rules").glob("*.smk")) + [ROOT / "workflow" / "Snakefile"]
    bad = []
    for path in files:
        bad += [f"{path.relative_to(ROOT)}:{n}: {t!r}" for n, t in python_literals(path) if spells_a_contract(t, names)]
    for path in smk:
        bad += [f"{path.relative_to(ROOT)}:{n}: {t!r}" for n, t in snakemake_literals(path) if spells_a_contract(t, names)]
    assert not bad, "contract file names outside sonodiff.contracts:\n" + "\n".join(bad)


@pytest.mark.parametrize("text, hit", [
    ("manifest.csv", "manifest.csv"), ("/data/x/manifest.csv", "manifest.csv"),
    ("results/models/a/b/model.pt", "model.pt"), ("data/x/manifest.csv/", "manifest.csv"),
    ("a manifest.csv file", None), ("config/config.yaml", None), ("mymodel.pt", None),
])
def test_the_file_name_check_itself(text, hit):
    assert spells_a_contract(text, contract_file_names()) == hit


# ---------------------------------------------------------------------------- one definition each

#: Helpers that once had several copies (issue 12): each is defined exactly once in the package.
SINGLE_DEFINITIONS = ("resolve_device", "autocast_dtype", "to_uint8", "to_model_range", "read_png",
                      "load_gray", "num_classes", "tex_escape", "save_figure", "colorize_labels",
                      "load_model", "make_diffusion", "pick_device", "bootstrap_ci", "summarize")


def test_each_shared_helper_is_defined_once():
    where: dict[str, list[str]] = {}
    for path in package_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.lstrip("_") in SINGLE_DEFINITIONS + ("Probe",):
                where.setdefault(node.name.lstrip("_"), []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    copies = {name: places for name, places in where.items() if len(places) > 1}
    assert not copies, copies


def test_module_names_are_unique_per_meaning():
    """No two modules named ``tables.py`` (a depth lookup table and the paper tables once were)."""
    stems: dict[str, list[str]] = {}
    for path in package_files():
        if path.name != "__init__.py":
            stems.setdefault(path.stem, []).append(str(path.relative_to(SRC)))
    assert len(stems.get("tables", [])) <= 1, stems["tables"]
