"""Every knob is stated once, as a field of the engine's options dataclass (mongo2pg/options.py: `knob`);
the CLI's flags are made from it at run time and the Ansible modules' ARGUMENT_SPEC and DOCUMENTATION by
scripts/gen_knobs.py. These tests hold the generators to the fields, and the modules to the generator."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from dataclasses import MISSING
from pathlib import Path

import pytest
import yaml

from mongo2pg.cli import build_parser
from mongo2pg.migration import Options
from mongo2pg.options import knobs, module_argument_spec
from mongo2pg.validation import ValidateOptions

ROOT = Path(__file__).resolve().parent.parent
CASES = [("migrate", Options, "mongo_pg_migrate"), ("validate", ValidateOptions, "mongo_pg_validate")]
CLI_ONLY = {"help", "quiet", "summary_file"}  # how the terminal shows the run, not what it does


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


def _cli_actions(command: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[command]._actions}


@pytest.fixture(autouse=True)
def _no_env_defaults(monkeypatch):
    for name in ("MONGO2PG_PG_URI", "MONGO2PG_MONGO_URI"):
        monkeypatch.delenv(name, raising=False)


def test_the_modules_are_what_the_option_fields_make():
    """A hand edit of a module's options, or a field changed without rerunning the generator, fails here."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_knobs.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(("command", "cls", "module"), CASES)
def test_every_knob_is_a_cli_flag_with_its_default_type_and_choices(command, cls, module):
    actions = _cli_actions(command)
    for k in knobs(cls):
        assert k.name in actions, f"{cls.__name__}.{k.name} has no flag in `mongo2pg {command}`"
        a = actions[k.name]
        want = None if k.default is MISSING else k.default
        assert a.default == want, f"{command} {a.option_strings}: CLI default {a.default!r}, field {want!r}"
        if k.type is bool:
            assert a.const is (not k.default), f"{command} {a.option_strings} must set {k.name} to {not k.default}"
        else:
            assert a.type is k.type and a.choices == k.choices, f"{command} {a.option_strings}: type or choices"
        assert a.help and k.help, f"{k.name}: no help"
    extra = set(actions) - {k.name for k in knobs(cls)} - CLI_ONLY
    assert not extra, f"`mongo2pg {command}` flags the engine never receives: {sorted(extra)}"


@pytest.mark.parametrize(("command", "cls", "module"), CASES)
def test_every_module_knob_is_an_option_with_its_default_type_and_choices(command, cls, module):
    lib = _module(module)
    spec, documented = lib.ARGUMENT_SPEC, yaml.safe_load(lib.DOCUMENTATION)["options"]
    offered = [k for k in knobs(cls) if k.module]
    assert list(spec) == [k.name for k in offered] == list(documented)
    for k in offered:
        arg, doc = spec[k.name], documented[k.name]
        assert arg["type"] == doc["type"] == ("path" if k.path else k.type.__name__)
        assert arg.get("required", False) == doc.get("required", False) == k.required
        if not k.required:
            assert arg.get("default") == doc.get("default") == k.default, k.name
        assert arg.get("choices") == doc.get("choices") == (list(k.choices) if k.choices else None), k.name
        assert arg.get("no_log", False) == k.secret, f"{module} {k.name}: no_log must follow the field's secret"
    assert {k.name for k in knobs(cls) if not k.module} == ({"finalize"} if cls is Options else set())


@pytest.mark.parametrize(("command", "cls", "module"), CASES)
def test_a_value_given_on_the_command_line_reaches_the_engine(command, cls, module):
    """Every flag, given a value other than its default, arrives in the options the handler builds."""
    argv, want = [command], {}
    for k in knobs(cls):
        flag = k.flag or "--" + k.name.replace("_", "-")
        if k.type is bool:
            argv.append(flag)
            want[k.name] = not k.default
            continue
        value = k.choices[-1] if k.choices else {str: f"x-{k.name}", int: 7, float: 0.25}[k.type]
        if k.name == "dump":  # one source: the test gives the dump, leaving mongo_uri at its default
            value, want["mongo_uri"] = "some/dump", None
        if k.name != "mongo_uri":
            argv += [flag, str(value)]
            want[k.name] = value
    args = build_parser().parse_args(argv)
    opts = cls.from_values(vars(args))
    assert {name: getattr(opts, name) for name in want} == want


@pytest.mark.parametrize(("command", "cls", "module"), CASES)
def test_module_params_build_the_engine_options(command, cls, module):
    params = {name: arg.get("default") for name, arg in module_argument_spec(cls).items()}
    params.update(pg_uri="postgresql://h/db", dump="d")
    opts = cls.from_values(params)
    assert (opts.pg_uri, opts.dump) == ("postgresql://h/db", "d")
    assert {k.name: getattr(opts, k.name) for k in knobs(cls) if k.module and not k.required} == {
        k.name: k.default if k.name != "dump" else "d" for k in knobs(cls) if k.module and not k.required}
