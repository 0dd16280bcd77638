#!/usr/bin/env python3
"""Parse every PowerShell file (.ps1, .psm1, .psd1) under the given folders with the tree-sitter
PowerShell grammar and fail on any ERROR or MISSING node.

    scripts/ps-parse.py [DIR ...]          (default: module scripts tests)

Needs PyPI `tree-sitter` and `tree-sitter-powershell` (scripts/test installs both into a venv under
target/). The grammar catches unclosed blocks, bad attributes, bad here-strings and stray tokens; it
does not catch everything PowerShell's own parser does (e.g. `try` without `catch`), and it wrongly
flags one-line `switch` bodies and `break label`, which this project's scripts avoid.
"""
import sys
from pathlib import Path

import tree_sitter
import tree_sitter_powershell

EXTENSIONS = {".ps1", ".psm1", ".psd1"}


def problems(tree):
    """(line, column, what) for every ERROR and MISSING node."""
    out = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.type == "ERROR":
            out.append((node.start_point[0] + 1, node.start_point[1] + 1, "syntax error"))
        elif node.is_missing:
            out.append((node.start_point[0] + 1, node.start_point[1] + 1, f"missing {node.type!r}"))
        if node.has_error:
            stack.extend(node.children)
    return sorted(out)


def main(argv):
    roots = [Path(a) for a in argv] or [Path("module"), Path("scripts"), Path("tests")]
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    files = sorted(p for r in roots if r.exists() for p in ([r] if r.is_file() else r.rglob("*"))
                   if p.suffix.lower() in EXTENSIONS and "target" not in p.parts and "node_modules" not in p.parts)
    bad = 0
    for f in files:
        data = f.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        found = problems(parser.parse(data))
        for line, col, what in found:
            text = data.splitlines()[line - 1].decode("utf-8", "replace").strip() if line <= len(data.splitlines()) else ""
            print(f"{f}:{line}:{col}: {what}: {text[:120]}")
        bad += bool(found)
    print(f"ps-parse: {len(files)} PowerShell files, {bad} with errors", file=sys.stderr)
    if not files:
        print("ps-parse: no PowerShell files found", file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
