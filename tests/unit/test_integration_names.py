"""Two test runs on one machine never share a lab name (issue #13 item 5).

Docker container and network-namespace names are machine-wide, so a lab name fixed in a test (or taken from a
shipped topology file) collides with the same test run by someone else. The integration tests name every lab
through tests/integration/helpers.py: `lab_name(base)` / `renamed(file, ...)` append this run's id, and
`run_lab`/`lab_argv` refuse to bring up a lab without it. This file checks that mechanism, and reads every
integration test's source for the ways around it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.integration import helpers

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "tests" / "integration"
NAME_TARGET = re.compile(r"^(name|lab|sc_lab|good|bad|[a-z_]*_lab|[A-Z_]*NAME)$")
OWN_MODULES = {"uuid", "secrets"}  # a test's own "unique" names: helpers.RUN_ID is the one way
OWN_CALLS = {"uuid4", "token_hex", "getpid"}


def sources() -> list[Path]:
    return sorted(p for p in INTEGRATION.glob("*.py") if p.name not in ("helpers.py", "__init__.py"))


def literal(node: ast.AST) -> bool:
    """A name spelled in the source: a string, an f-string, or a concatenation of them (no lab_name call)."""
    if isinstance(node, ast.Constant | ast.JoinedStr):
        return isinstance(node, ast.JoinedStr) or (isinstance(node.value, str) and node.value != "")
    return isinstance(node, ast.BinOp) and literal(node.left) and literal(node.right)


def fixed_names(tree: ast.AST) -> list[str]:
    """Where a lab name is spelled out instead of made by helpers.lab_name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and literal(node.value):
            found += [f"line {node.lineno}: {t.id} = ..." for t in node.targets
                      if isinstance(t, ast.Name) and NAME_TARGET.match(t.id)]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append" \
                and "cleanup" in ast.unparse(node.func.value) and node.args and literal(node.args[0]):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("lab_up"):
            found += [f"line {node.lineno}: lab_up(name=...)" for k in node.keywords
                      if k.arg == "name" and literal(k.value)]
    return found


def bypasses(tree: ast.AST) -> list[str]:
    """The CLI run around helpers.run_lab/lab_argv (no name check), or names made unique some other way."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple):
            words = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if any(words[i:i + 2] == ["-m", "lab"] for i in range(len(words))):
                found.append(f"line {node.lineno}: runs `python -m lab` itself (use helpers.run_lab or lab_argv)")
        imported = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if set(imported) & OWN_MODULES or (isinstance(node, ast.Attribute) and node.attr in OWN_CALLS):
            found.append(f"line {node.lineno}: {ast.unparse(node)} (use helpers.lab_name)")
    return found


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.name)
def test_integration_test_names_its_labs_per_run(path: Path) -> None:
    tree = ast.parse(path.read_text())
    problems = fixed_names(tree) + bypasses(tree)
    assert problems == [], f"{path.name}: " + "; ".join(problems)


def test_the_source_check_sees_the_ways_around_it() -> None:
    bad = ast.parse('name = "routing-bgp1"\nNAME = f"v{os.getpid()}-x"\ncleanup_lab.append("dg-pairs")\n'
                    'lab = lab_up(REF, name="plug")\nsubprocess.Popen([sys.executable, "-m", "lab", "up", p])\n'
                    'sc_lab = f"sc-{uuid.uuid4().hex}"\n')
    assert len(fixed_names(bad)) == 5
    assert len(bypasses(bad)) == 3  # python -m lab, getpid, uuid4
    assert len(bypasses(ast.parse("import uuid\nfrom secrets import token_hex\n"))) == 2
    good = ast.parse('name = lab_name("bgp1")\nNAME = lab_name("v-plug")\npath, name = renamed(SRC, tmp, "err")\n')
    assert fixed_names(good) == [] and bypasses(good) == []


def test_lab_names_carry_this_runs_id_and_fit_the_pattern() -> None:
    name = helpers.lab_name("routing-b1")
    assert name == f"routing-b1-{helpers.RUN_ID}" and helpers.of_this_run(name)
    assert re.fullmatch(r"[0-9a-f]{4}", helpers.RUN_ID) or helpers.RUN_ID  # LAB_TEST_RUN_ID may set it
    with pytest.raises(AssertionError, match="not a valid lab name"):
        helpers.lab_name("routing-bgp4k")  # 13 + 5 characters: more than a lab name holds


def test_renamed_copies_a_topology_under_this_runs_name(tmp_path: Path) -> None:
    src = ROOT / "topologies" / "s2s-route-based.yml"
    path, name = helpers.renamed(src, tmp_path)
    assert name == f"s2s-rb-{helpers.RUN_ID}" and path.parent == tmp_path
    before, after = src.read_text().splitlines(), path.read_text().splitlines()
    assert [a for a, b in zip(before, after, strict=True) if a != b] == ["name: s2s-rb"]
    assert f"name: {name}" in after
    assert helpers.renamed(src, tmp_path, "ref")[1] == f"ref-{helpers.RUN_ID}"


def test_bringing_up_a_lab_under_a_fixed_name_is_refused(tmp_path: Path) -> None:
    fixed = ROOT / "topologies" / "s2s-route-based.yml"
    for args in (("up", str(fixed)), ("test-device", str(fixed), "--json"), ("scenario", "start", "psk-mismatch"),
                 ("scenario", "start", "psk-mismatch", "--lab", "sc-psk")):
        with pytest.raises(AssertionError, match="collides with other test runs"):
            helpers.assert_named_for_this_run(args)
    with pytest.raises(AssertionError, match="would bring up lab 's2s-rb'"):
        helpers.run_lab("up", str(fixed), home=tmp_path)  # refused before any process starts
    ours, _ = helpers.renamed(fixed, tmp_path)
    helpers.assert_named_for_this_run(("up", str(ours), "--json"))
    helpers.assert_named_for_this_run(("scenario", "start", "x", "--lab", helpers.lab_name("sc")))
    helpers.assert_named_for_this_run(("inspect", "s2s-rb"))  # only commands that create a lab are checked
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00")
    invalid = tmp_path / "invalid.yml"
    invalid.write_text("name: Not_A_Lab_Name\n")
    for path in (binary, invalid, tmp_path / "missing.yml"):  # refused by `lab up` itself before anything exists
        helpers.assert_named_for_this_run(("up", str(path)))
