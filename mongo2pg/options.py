"""What every run of the engine is given: the source, the target, the mapping, its error log and its
worker count. Migration and validation options extend it (migration/options.py, validation/options.py).

Each option is stated once, here, with its help: `knob()` carries what the CLI's flags (cli/parser.py)
and the Ansible modules' argument specs and DOCUMENTATION (written by scripts/gen_knobs.py) are made
from, so none of them restates a name, a type, a default or a choice.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Self

from .workers import worker_count


def knob(default: Any = MISSING, help: str = "", *, choices: tuple[str, ...] | None = None, path: bool = False,
         secret: bool = False, env: str | None = None, flag: str | None = None, inverted: bool = False,
         module: bool = True, group: str | None = None, metavar: str | None = None, flag_help: str | None = None
         ) -> Any:
    """A dataclass field that is also an option of the CLI and the modules.

    path: a file or folder (the modules' type `path`); secret: never logged (no_log), its CLI default from
    `env`; flag: the CLI's name when it is not `--<name>`, with `inverted` when the flag sets the field to
    the opposite of its default (`--no-finalize`), and `flag_help` then says what the flag does; module: False keeps it out of the modules (the phase
    always sets it); group: the CLI's argument group (mutually alternative sources).
    """
    meta = {"help": help, "choices": choices, "path": path, "secret": secret, "env": env, "flag": flag,
            "inverted": inverted, "module": module, "group": group, "metavar": metavar,
            "flag_help": flag_help}
    return field(default=default, metadata={"knob": meta})


@dataclass(frozen=True)
class Knob:
    """One option as the CLI and the modules see it."""

    name: str
    type: type
    default: Any  # MISSING: required
    help: str
    choices: tuple[str, ...] | None
    path: bool
    secret: bool
    env: str | None
    flag: str | None
    inverted: bool
    module: bool
    group: str | None
    metavar: str | None
    flag_help: str | None

    @property
    def required(self) -> bool:
        return self.default is MISSING

    @property
    def module_type(self) -> str:
        return "path" if self.path else {str: "str", int: "int", float: "float", bool: "bool"}[self.type]


_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "str | None": str}


def knobs(cls: type) -> list[Knob]:
    """The options of an options dataclass, in field order."""
    return [Knob(name=f.name, type=_TYPES[f.type] if isinstance(f.type, str) else f.type, default=f.default,
                 **f.metadata["knob"]) for f in fields(cls)]


@dataclass
class RunOptions:
    pg_uri: str = knob(help="PostgreSQL URI of the target database; sslmode=verify-full&sslrootcert=... for TLS",
                       secret=True, env="MONGO2PG_PG_URI")
    mongo_uri: str | None = knob(None, "live MongoDB URI (one of this and dump); tls=true&tlsCAFile=... for TLS",
                                 secret=True, env="MONGO2PG_MONGO_URI", group="source (one of)")
    dump: str | None = knob(None, "folder `mongodump --out` wrote (holding <db>/), or the <db> folder itself",
                            path=True, group="source (one of)")
    db: str = knob("nextcrm", "database name in MongoDB or inside the dump")
    mapping: str = knob("nextcrm", "built-in mapping name or a YAML file")
    error_log: str = knob("migration-errors.log", "the JSON-lines log of rejected records and fix-ups (the "
                          "migration writes it, mode 0600; validation accounts for the rejects with it)", path=True)
    workers: int = knob(0, "parallel worker processes; 0 sizes it to the machine (one per CPU, at most 4)")
    retry_seconds: float = knob(300.0, "keep retrying a lost connection to either side this long before failing")

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Self:
        """Options from a dict holding (at least) the required fields, e.g. the CLI's parsed arguments or a
        module's params; other keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def worker_count(self) -> int:
        return worker_count(self.workers)


def env_default(k: Knob) -> Any:
    """A knob's CLI default: its environment variable when set, else its default (None when required)."""
    if k.env and os.environ.get(k.env):
        return os.environ[k.env]
    return None if k.required else k.default


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def module_argument_spec(cls: type) -> dict[str, dict[str, Any]]:
    """An Ansible argument_spec of the knobs the modules offer."""
    spec: dict[str, dict[str, Any]] = {}
    for k in knobs(cls):
        if not k.module:
            continue
        arg: dict[str, Any] = {"type": k.module_type}
        if k.required:
            arg["required"] = True
        elif k.default is not None:
            arg["default"] = k.default
        if k.choices:
            arg["choices"] = list(k.choices)
        if k.secret:
            arg["no_log"] = True
        spec[k.name] = arg
    return spec


def module_documentation(cls: type) -> dict[str, dict[str, Any]]:
    """The `options` of an Ansible module's DOCUMENTATION, for the same knobs."""
    doc: dict[str, dict[str, Any]] = {}
    for name, arg in module_argument_spec(cls).items():
        k = next(k for k in knobs(cls) if k.name == name)
        text = _sentence(k.help) + (" Contains a password, so never logged." if k.secret else "")
        doc[name] = {"description": text, **{key: v for key, v in arg.items() if key != "no_log"}}
    return doc
