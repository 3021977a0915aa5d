"""The package's shape, checked on every run: layers and no circles (import-linter, contracts in
pyproject.toml; docs/architecture.md explains them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    exe = Path(sys.executable).parent / "lint-imports"
    r = subprocess.run(
        [str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "2 kept, 0 broken" in r.stdout, r.stdout[-2000:]


def test_ruff_rules_and_format_are_kept():
    """pyproject's ruff rules (100 columns included) and `ruff format` hold everywhere."""
    exe = Path(sys.executable).parent / "ruff"
    paths = ["daemon", "tests", "bench"]
    check = subprocess.run(
        [str(exe), "check", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 0, check.stdout[-4000:]
    fmt = subprocess.run(
        [str(exe), "format", "--check", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout[-4000:]


def _architecture_rules() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10 (JetPack 6): a dependency there
        import tomli as tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["miragen"]["architecture"]


def _modules():
    import ast

    for path in sorted((ROOT / "daemon" / "miragen").rglob("*.py")):
        rel = path.relative_to(ROOT / "daemon")
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield path, ".".join(parts), ast.parse(path.read_text(), str(path))


def _functions(tree):
    import ast

    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _imported(node, module: str, is_package: bool) -> list[str]:
    """Absolute names an Import/ImportFrom node brings in."""
    import ast

    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level == 0:
        return [node.module or ""]
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    target = ".".join(base + ([node.module] if node.module else []))
    if node.module:
        return [target]
    return [f"{target}.{a.name}" for a in node.names]


def test_imports_sit_at_the_top_except_the_listed_heavy_ones():
    """Imports inside functions hide circles from import-linter: only the modules listed in
    pyproject's [tool.miragen.architecture] deferred_imports may be imported there."""
    import ast

    allowed = _architecture_rules()["deferred_imports"]

    def deferrable(name: str) -> bool:
        return any(name == a or name.startswith(a + ".") for a in allowed)

    found = []
    for path, module, tree in _modules():
        is_package = path.name == "__init__.py"
        for fn in _functions(tree):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = _imported(node, module, is_package)
                    found += [
                        f"{path.relative_to(ROOT)}:{node.lineno} {fn.name}: {n}"
                        for n in names
                        if not deferrable(n)
                    ]
    assert not found, "imports inside functions:\n" + "\n".join(found)


def _kept_whole() -> dict[str, str]:
    """docs/architecture.md's "Functions kept whole" table: `module:function` → reason."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Functions kept whole", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`") and cells[1]:
            rows[cells[0].strip("`")] = cells[1]
    return rows


def test_no_function_is_longer_than_the_limit_unless_listed_with_a_reason():
    limit = _architecture_rules()["max_function_lines"]
    kept = _kept_whole()
    long = {}
    for _path, module, tree in _modules():
        for fn in _functions(tree):
            n = fn.end_lineno - fn.lineno + 1
            if n > limit:
                long[f"{module}:{fn.name}"] = n
    unlisted = {k: v for k, v in long.items() if k not in kept}
    assert not unlisted, f"functions over {limit} lines, not in docs/architecture.md: {unlisted}"
    stale = sorted(set(kept) - set(long))
    assert not stale, f"docs/architecture.md lists functions that are no longer long: {stale}"


def test_a_command_line_loads_only_the_command_it_names():
    """Imports sit at module tops, so every command module brings its whole tree: the CLI loads
    only the one the command line names (all of them for ``--help``)."""
    code = (
        "import sys; from miragen import cli; cli.build_parser(sys.argv[1:]); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('miragen.'))))"
    )

    def loaded(*argv: str) -> set[str]:
        r = subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
        )
        return set(r.stdout.split())

    one = loaded("-v", "convert", "in.wav")
    assert "miragen.commands.convert" in one
    assert not {"miragen.commands.train", "miragen.service.daemon", "miragen.demo.run"} & one
    every = loaded()  # no command named: all of them, for the usage and --help
    assert {"miragen.commands.train", "miragen.commands.daemon", "miragen.commands.demo"} <= every
