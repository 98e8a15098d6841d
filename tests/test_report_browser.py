"""The HTML report in a real browser.

Builds a tiny results tree (tests/report_tree.py), runs the report stage's real rules on it with
``snakemake``, writes the report with ``snakemake --report``, and opens it in headless Chromium
(Debian's ``chromium``, installed here with apt when missing and we are root) through the
DevTools protocol. Checks: no console errors or uncaught exceptions; every figure, table page and
the provenance page is in the report; each category lists its results after the app has run;
each image decodes; each HTML page holds its table. Saves screenshots next to the report.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1400,900"]

pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- Chromium

def chromium_binary() -> str:
    """Path of Chromium; installs Debian's package when missing (root only), else skips."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("Chromium is not installed and this user cannot run apt-get (not root)")
    if not shutil.which("apt-get"):
        pytest.skip("Chromium is not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.skip(f"cannot install Chromium with apt ({' '.join(cmd)} failed: {proc.stderr.strip()[-300:]})")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed no chromium binary")
    return found


class DevTools:
    """A minimal Chrome DevTools Protocol session over one page's websocket."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression[:80]}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for: {expression}")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors seen so far."""
        self.call("Runtime.evaluate", expression="0")  # drain pending events
        out = []
        for ev in self.events:
            method, params = ev["method"], ev.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(f"{params['entry'].get('source')}: {params['entry'].get('text')}")
        return out

    def close(self):
        self.ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = chromium_binary()
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             "--remote-allow-origins=*", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 60
        while not port_file.is_file() or not port_file.read_text().strip():
            if proc.poll() is not None:
                pytest.fail(f"Chromium exited: {proc.stderr.read().decode()[-1000:]}")
            if time.monotonic() > end:
                pytest.fail("Chromium did not open its DevTools port within 60 s")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
            pages = [t for t in json.load(resp) if t["type"] == "page"]
        session = DevTools(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            session.call(f"{domain}.enable")
        yield session
        session.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


# ----------------------------------------------------------------------------- the report

def _snakemake(workdir: Path, *args: str, timeout: int = 600) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(SNAKEMAKE), "--directory", str(workdir), "--snakefile", str(workdir / "Snakefile"),
                           *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report written by the real report rules and `snakemake --report` on a tiny results tree
    (one dataset, both variants; the upstream outputs are made by tests/report_tree.py)."""
    from report_tree import make_results_tree

    from sonodiff.config import validate_config

    workdir = tmp_path_factory.mktemp("report")
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["datasets"] = {"phantom_camus": raw["datasets"]["phantom_camus"]}
    (workdir / "config.yaml").write_text(yaml.safe_dump(raw))
    make_results_tree(workdir, validate_config(raw))
    (workdir / "Snakefile").write_text(
        'configfile: "config.yaml"\n\n\n'
        f'report: "{ROOT}/workflow/report/workflow.rst"\n\n\n'
        f'include: "{ROOT}/workflow/rules/common.smk"\n'
        f'include: "{ROOT}/workflow/rules/report.smk"\n\n\n'
        "rule all:\n    input:\n        report_targets(),\n"
    )
    _snakemake(workdir, "--cores", "2", "--quiet")
    _snakemake(workdir, "--report", "report.html")
    return workdir


def expected_results(variants=("baseline", "bmaps"), d="phantom_camus") -> set[str]:
    figs = [f"results/figures/{k}/{d}.png" for k in
            ("bmaps", "forward", "reverse", "qualitative", "training", "depth_profile", "segment")]
    figs += [f"results/figures/samples/{d}/{v}.png" for v in variants]
    tables = [f"results/report/tables/{t}.html" for t in ("fid", "paired", "physics", "segmentation")]
    return set(figs + tables + ["results/report/provenance.html"])


def test_report_in_chromium(report, browser):
    html_path = report / "report.html"
    assert html_path.stat().st_size > 100_000
    browser.call("Page.navigate", url=html_path.as_uri())
    browser.wait_for("typeof app !== 'undefined' && document.querySelector('#app').innerText.length > 0", 60)
    browser.wait_for("document.querySelector('#loading-screen').style.display === 'none'")

    # the front page (workflow.rst) rendered with the run's config
    body = browser.evaluate("document.body.innerText")
    assert "synthetic ultrasound with B-map diffusion models" in body and "phantom_camus" in body
    # ... opening with the verdict table and the depth-profile figure, before any menu
    assert "Verdict" in body and "depth-profile L1" in body and "bmaps better" in body
    assert body.index("Verdict") < body.index("Results")
    assert browser.evaluate("[...document.querySelectorAll('img')].some(i => i.src.startsWith('data:image/png') "
                            "&& i.naturalWidth > 0 && i.alt.startsWith('depth profile'))")
    browser.screenshot(report / "screenshot_front.png")

    results = browser.evaluate("results")
    missing = expected_results() - set(results)
    assert not missing, f"not in the report: {sorted(missing)}"

    categories = browser.evaluate("categories")
    assert set(categories) == {"1. Paper figures", "2. Samples", "3. Training", "4. Depth profile",
                               "5. Segmentation", "6. Tables", "7. Provenance"}
    listed = set()
    for cat, subcats in categories.items():
        for sub, paths in subcats.items():
            # as a click through the menu does: back to the menu, then into the (sub)category
            browser.evaluate("app.setView({navbarMode: 'menu'})")
            browser.wait_for(f"document.body.innerText.includes({json.dumps(cat)})")
            browser.evaluate(f"app.showCategory({json.dumps(cat)})")
            browser.evaluate(f"app.setView({{navbarMode: 'subcategory', category: {json.dumps(cat)}, "
                             f"subcategory: {json.dumps(sub)}}})")
            for p in paths:  # each result's label (or file name) appears in the rendered list
                entry = results[p]
                names = list((entry.get("labels") or {}).values()) or [entry["name"]]
                browser.wait_for("(() => { const t = document.body.innerText; return "
                                 + " && ".join(f"t.includes({json.dumps(str(n))})" for n in names) + "; })()", 10)
            listed.update(paths)
    assert expected_results() <= listed

    # open every result: images decode, HTML pages carry their tables
    shots = {}
    for path in sorted(expected_results()):
        entry = results[path]
        if entry["mime_type"] == "text/html":
            page = base64.b64decode(entry["data_uri"].split(",", 1)[1]).decode()
            assert "<table" in page and "</html>" in page, path
            browser.evaluate(f"app.setView({{content: 'html', contentPath: {json.dumps(entry['data_uri'])}, "
                             f"resultPath: {json.dumps(path)}}})")
            browser.wait_for("document.querySelector('iframe') !== null")
        else:
            assert entry["mime_type"] == "image/png", path
            browser.evaluate(f"app.setView({{content: 'img', contentPath: {json.dumps(entry['data_uri'])}, "
                             f"resultPath: {json.dumps(path)}}})")
            size = browser.wait_for(
                f"(() => {{ const i = document.querySelector('img[src={json.dumps(entry['data_uri'][:64])}]') "
                "|| [...document.querySelectorAll('img')].find(x => x.src === "
                f"{json.dumps(entry['data_uri'])}); return i && i.complete && i.naturalWidth > 0 "
                "? [i.naturalWidth, i.naturalHeight] : null; })()", 20)
            assert size[0] > 100 and size[1] > 50, (path, size)
        assert entry["caption"], f"{path} has no caption"
        if path.endswith(("qualitative/phantom_camus.png", "tables/fid.html")):
            cat = next(c for c, subs in categories.items() for ps in subs.values() if path in ps)
            browser.evaluate(f"app.setView({{navbarMode: 'resultinfo', category: {json.dumps(cat)}, "
                             f"resultPath: {json.dumps(path)}}})")
            time.sleep(0.5)
            shots[path] = browser.screenshot(report / f"screenshot_{Path(path).parent.name}_{Path(path).stem}.png")
    assert len(shots) == 2

    errors = browser.errors()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)
