"""Shared pieces of the mongo2pg Ansible modules: the source constraint and the engine import (the options
themselves are generated from the engine's option fields: scripts/gen_knobs.py)."""

from __future__ import annotations

SOURCE_CONSTRAINTS = {"required_one_of": [("mongo_uri", "dump")], "mutually_exclusive": [("mongo_uri", "dump")]}


def engine_missing_message(exc: Exception) -> str:
    return (f"the mongo2pg engine is not importable ({exc}): run this module with the project's .venv python "
            "(ansible_python_interpreter)")


def import_engine(module, *names: str):
    """The mongo2pg submodules `names`, in order; or the task fails saying how to fix the interpreter."""
    import importlib

    try:
        return [importlib.import_module(f"mongo2pg.{name}") for name in names]
    except ImportError as exc:
        module.fail_json(msg=engine_missing_message(exc))
