"""Every knob is stated in four places: the engine's options dataclass, the CLI's argparse, the Ansible
module's argument_spec and its DOCUMENTATION. These tests hold the four together (names, defaults,
types, choices): a knob added or changed in one place only fails here."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import yaml

from mongo2pg.cli import build_parser
from mongo2pg.migration import Options
from mongo2pg.validation import ValidateOptions

ROOT = Path(__file__).resolve().parent.parent
PY_TYPES = {"str": str, "path": str, "int": int, "float": float, "bool": bool}

# name in the CLI -> (the options field, how the value maps): flags that say the opposite of the field.
CLI_INVERTED = {"no_finalize": "finalize", "lenient": "strict"}
# What one side has and the other need not, each with its reason.
CLI_ONLY = {"help", "quiet", "summary_file"}  # how the terminal shows the run, not what it does
MODULE_OMITS = {"migrate": {"finalize"}, "validate": set()}  # a phase always finalizes (30_migrate)

CASES = [("migrate", Options, "mongo_pg_migrate"), ("validate", ValidateOptions, "mongo_pg_validate")]


def _module(name: str):
    """library/<name>.py imported as Ansible would run it (its module_utils under ansible.module_utils)."""
    utils = importlib.util.spec_from_file_location("ansible.module_utils.mongo2pg_common",
                                                   ROOT / "module_utils" / "mongo2pg_common.py")
    mod = importlib.util.module_from_spec(utils)
    utils.loader.exec_module(mod)
    sys.modules["ansible.module_utils.mongo2pg_common"] = mod
    spec = importlib.util.spec_from_file_location(f"library_{name}", ROOT / "library" / f"{name}.py")
    lib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lib)
    return lib


def _fields(cls) -> dict[str, object]:
    """Field name -> default (MISSING for a required one)."""
    return {f.name: f.default for f in fields(cls)}


def _cli_actions(command: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[command]._actions}


@pytest.fixture(autouse=True)
def _no_env_defaults(monkeypatch):
    for name in ("MONGO2PG_PG_URI", "MONGO2PG_MONGO_URI"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("command", "cls", "module"), CASES)
def test_every_cli_option_is_an_engine_option_with_the_same_default(command, cls, module):
    engine = _fields(cls)
    actions = _cli_actions(command)
    for dest, action in actions.items():
        if dest in CLI_ONLY:
            continue
        if dest in CLI_INVERTED:
            name = CLI_INVERTED[dest]
            assert name in engine, f"--{dest} inverts {name}, which {cls.__name__} does not have"
            assert action.default is (not engine[name]), f"--{dest} must default to the opposite of {name}"
            continue
        assert dest in engine, f"CLI {command} --{dest} is no field of {cls.__name__}: its value would be dropped"
        want = None if engine[dest] is MISSING else engine[dest]
        assert action.default == want, f"{command} --{dest}: CLI default {action.default!r}, engine {want!r}"
        if action.type is not None and want is not None:
            assert isinstance(want, action.type), f"{command} --{dest}: CLI type {action.type}, default {want!r}"
    covered = {CLI_INVERTED.get(d, d) for d in actions}
    assert set(engine) <= covered, f"{cls.__name__} fields without a CLI option: {sorted(set(engine) - covered)}"


@pytest.mark.parametrize(("command", "cls", "module"), CASES)
def test_every_module_option_is_an_engine_option_with_the_same_default(command, cls, module):
    engine = _fields(cls)
    spec = _module(module).ARGUMENT_SPEC
    cli = _cli_actions(command)
    for name, arg in spec.items():
        assert name in engine, f"{module} option {name} is no field of {cls.__name__}: its value would be dropped"
        if name in cli and cli[name].choices:
            assert arg.get("choices") == list(cli[name].choices), f"{module} {name}: choices differ from the CLI's"
        if engine[name] is MISSING:
            assert arg.get("required") is True, f"{module} {name}: the engine requires it, the module does not"
            continue
        assert arg.get("default") == engine[name], (f"{module} {name}: module default {arg.get('default')!r}, "
                                                   f"engine {engine[name]!r}")
        if engine[name] is not None:
            assert isinstance(engine[name], PY_TYPES[arg["type"]]), f"{module} {name}: type {arg['type']}"
    missing = set(engine) - set(spec) - MODULE_OMITS[command]
    assert not missing, f"{cls.__name__} fields the module {module} does not offer: {sorted(missing)}"


@pytest.mark.parametrize(("command", "cls", "module"), CASES)
def test_each_module_documents_exactly_its_argument_spec(command, cls, module):
    lib = _module(module)
    documented = yaml.safe_load(lib.DOCUMENTATION)["options"]
    spec = lib.ARGUMENT_SPEC
    assert set(documented) == set(spec), (f"{module}: documented only {sorted(set(documented) - set(spec))}, "
                                          f"not documented {sorted(set(spec) - set(documented))}")
    for name, arg in spec.items():
        doc = documented[name]
        assert doc.get("type") == arg["type"], f"{module} {name}: documented type {doc.get('type')}, spec {arg['type']}"
        assert doc.get("default") == arg.get("default"), (f"{module} {name}: documented default {doc.get('default')!r}, "
                                                          f"spec {arg.get('default')!r}")
        assert bool(doc.get("required")) == bool(arg.get("required")), f"{module} {name}: required differs"
        assert doc.get("choices") == arg.get("choices"), f"{module} {name}: choices differ"


def test_the_cli_builds_the_options_it_was_given():
    """from_values takes the parsed arguments: a value given on the command line reaches the engine."""
    args = build_parser().parse_args(["migrate", "--dump", "d", "--pg-uri", "postgresql://h/db", "--batch-size", "7",
                                      "--batch-bytes", "1024", "--workers", "3", "--no-finalize", "--fresh",
                                      "--min-free-disk", "0.2", "--retry-seconds", "9"])
    opts = Options.from_values({**vars(args), "finalize": not args.no_finalize})
    assert (opts.batch_size, opts.batch_bytes, opts.workers, opts.finalize, opts.fresh, opts.min_free_disk,
            opts.retry_seconds, opts.dump) == (7, 1024, 3, False, True, 0.2, 9.0, "d")
