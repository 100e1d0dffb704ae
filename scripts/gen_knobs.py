#!/usr/bin/env python3
"""Writes the Ansible modules' options from the engine's option fields (mongo2pg/options.py: `knob`): the
ARGUMENT_SPEC and the `options:` of DOCUMENTATION of each module below, between their generated markers.
`--check` writes nothing and exits 1 when a module is not what the fields make (tests/test_knobs.py).

    .venv/bin/python scripts/gen_knobs.py [--check]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mongo2pg.migration.options import Options  # noqa: E402
from mongo2pg.options import module_argument_spec, module_documentation  # noqa: E402
from mongo2pg.validation.options import ValidateOptions  # noqa: E402

MODULES = {"mongo_pg_migrate": Options, "mongo_pg_validate": ValidateOptions}
SPEC_BLOCK = re.compile(r"(# BEGIN generated ARGUMENT_SPEC[^\n]*\n).*?(# END generated ARGUMENT_SPEC\n)", re.S)
DOC_BLOCK = re.compile(r"(  # BEGIN generated options[^\n]*\n).*?(  # END generated options\n)", re.S)


def spec_text(cls: type) -> str:
    lines = ["ARGUMENT_SPEC = {"]
    for name, arg in module_argument_spec(cls).items():
        lines.append(f"    {name!r}: {arg!r},".replace("'", '"'))
    return "\n".join(lines) + "\n}\n"


def doc_text(cls: type) -> str:
    text = yaml.safe_dump(module_documentation(cls), sort_keys=False, width=110, allow_unicode=True)
    return "".join("  " + line + "\n" for line in text.splitlines())


def generated(path: Path, cls: type) -> str:
    text = path.read_text()
    for block, body in ((SPEC_BLOCK, spec_text(cls)), (DOC_BLOCK, doc_text(cls))):
        if not block.search(text):
            raise SystemExit(f"{path}: no generated markers ({block.pattern[:40]}...)")
        text = block.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv) or set(argv) - {"--check"}:
        print(__doc__.strip())
        return 0 if {"-h", "--help"} & set(argv) else 2
    check = "--check" in argv
    stale = []
    for name, cls in MODULES.items():
        path = ROOT / "library" / f"{name}.py"
        text = generated(path, cls)
        if text != path.read_text():
            stale.append(path.name)
            if not check:
                path.write_text(text)
    if check and stale:
        print(f"not what the option fields make: {', '.join(stale)} (run scripts/gen_knobs.py)")
        return 1
    print(("rewrote " + ", ".join(stale)) if stale and not check else "modules match the option fields")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
