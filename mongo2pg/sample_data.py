"""Deterministic NextCRM-shaped MongoDB data for all 29 models.

`scale=1` reproduces the runbook's production volumes (1,254,390 documents). Ids,
values and file bytes depend only on (seed, scale, dirty_rate). References resolve;
many-to-many links are stored on both sides of the relation (mostly both, some only
on one side, as real Prisma data drifts), so a migration must read both sides.
`dirty_rate` injects the problems real data has, each listed in the manifest.

`profile` sets the documents' weight: "default" (about 340 bytes of BSON a document) or "runbook-bytes",
the runbook's production (12.3 GB for 1,254,390 records: about 9.8 KB a document): long descriptions,
comments, task contents and invoice items, and a tail of 1-5 MB invoices and documents, some in runs
of consecutive ones.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bson import DatetimeMS, ObjectId

from .dumpfmt import DumpWriter
from .files import open_private
from .mapping import Mapping, load_mapping

MODEL_FILE = Path(__file__).resolve().parent / "mappings" / "nextcrm-mongodb-model.json"
INITIAL_DIR = Path(__file__).resolve().parent / "sample_data" / "initial"

# The runbook's console output (PHASE6, Task Group 6.2 step 4) for the tables it
# shows; the rest is spread over the remaining nine so the total is 1,254,390.
PRODUCTION_COUNTS = {
    "crm_Industry_Type": 50, "Documents_Types": 10, "invoice_States": 8, "system_Modules_Enabled": 12,
    "modulStatus": 5, "systemServices": 3, "gpt_models": 4,
    "Users": 1_250, "MyAccount": 1, "Employees": 45, "ImageUpload": 233, "TodoList": 890,
    "crm_campaigns": 15, "crm_Opportunities_Sales_Stages": 8, "crm_Opportunities_Type": 6,
    "crm_Accounts": 15_340, "crm_Contacts": 42_180, "crm_Leads": 8_920, "crm_Contracts": 3_210,
    "crm_Opportunities": 50_000,
    "Boards": 2_500, "Sections": 12_500, "Tasks": 310_000, "crm_Accounts_Tasks": 180_000,
    "tasksComments": 465_000, "Documents": 98_000, "Invoices": 63_000, "openAi_keys": 700,
    "secondBrain_notions": 500,
}
PRODUCTION_TOTAL = 1_254_390
# Lookup tables and the singleton keep their size at every scale.
FIXED_SIZE = {"crm_Industry_Type", "Documents_Types", "invoice_States", "system_Modules_Enabled", "modulStatus",
              "systemServices", "gpt_models", "MyAccount", "crm_campaigns", "crm_Opportunities_Sales_Stages",
              "crm_Opportunities_Type"}
INITIAL_FILES = {"crm_Industry_Type": "crm_Industry_Type.json", "crm_campaigns": "crm_campaigns.json",
                 "system_Modules_Enabled": "system_Modules_Enabled.json", "gpt_models": "gpt_Models.json",
                 "crm_Opportunities_Type": "crm_Opportunities_Type.json",
                 "crm_Opportunities_Sales_Stages": "crm_Opportunities_Sales_Stages.json"}
# Object-id fields with no relation in Prisma still point somewhere real.
UNRELATED_REFS = {"createdBy": "Users", "updatedBy": "Users", "created_by": "Users", "last_activity_by": "Users",
                  "last_updated_by": "Users", "contact": "crm_Contacts", "account": "crm_Accounts",
                  "sharedWith": "Users", "board": "Boards", "user": "Users"}
DIRTY_KINDS = ("dangling_reference", "enum_invalid", "missing_required", "nul_in_string",
               "date_out_of_range", "number_as_string", "duplicate_array_id")
EPOCH_START = datetime(2019, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 6 * 365 * 24 * 3600
PROFILES = ("default", "runbook-bytes")
# runbook-bytes: the fields that carry a document's bulk, and the mean length of their text in characters.
LONG_TEXT_FIELDS = {"description", "content", "comment", "next_step", "notes"}
LONG_TEXT_MEAN = 8_900
LONG_TEXT_MAX = 64_000
# runbook-bytes: in these collections, each block of TAIL_BLOCK documents opens with a run of 0-TAIL_RUN_MAX
# heavy documents of TAIL_BYTES (a heavy invoice's items or a document's description).
TAIL_COLLECTIONS = {"Invoices": "invoice_items", "Documents": "description"}
TAIL_BLOCK = 1_000
TAIL_RUN_MAX = 6
TAIL_BYTES = (1 << 20, 5 << 20)

FIRST = ["Anna", "Jan", "Petra", "Lukas", "Maria", "Tomas", "Eva", "Jakub", "Sofia", "Oliver", "Emma", "Noah",
         "Chloe", "Liam", "Yuki", "Mateo", "Aisha", "Ivan", "Olga", "Pierre", "Zoë", "José", "Björn", "Ana"]
LAST = ["Novak", "Svoboda", "Dvorak", "Muller", "Schmidt", "Smith", "Johnson", "Garcia", "Rossi", "Kowalski",
        "Dubois", "Tanaka", "Silva", "Nielsen", "O'Brien", "Horvath", "Kim", "Nguyen", "Müller", "Łukasz"]
CITIES = ["Prague", "Brno", "Berlin", "Munich", "Kyiv", "Lviv", "London", "Paris", "Madrid", "New York",
          "Toronto", "Austin", "Tokyo", "São Paulo", "Zürich"]
COUNTRIES = ["Czech Republic", "Germany", "Ukraine", "United Kingdom", "France", "Spain", "USA", "Canada",
             "Japan", "Brazil", "Switzerland"]
WORDS = ["quarterly", "renewal", "pipeline", "onboarding", "integration", "invoice", "contract", "demo",
         "follow-up", "pricing", "support", "migration", "roadmap", "security", "audit", "training", "launch",
         "budget", "proposal", "review", "kick-off", "upgrade", "license", "workshop", "feedback"]
COMPANY_SUFFIX = ["s.r.o.", "GmbH", "Ltd", "Inc.", "LLC", "a.s.", "SA", "AG"]
MIMES = ["application/pdf", "image/png", "image/jpeg", "text/plain",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"]


def collection_counts(scale: float) -> dict[str, int]:
    return {name: (n if name in FIXED_SIZE else max(1, round(n * scale))) for name, n in PRODUCTION_COUNTS.items()}


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass
class Manifest:
    seed: int
    scale: float
    dirty_rate: float
    counts: dict[str, int] = field(default_factory=dict)
    profile: str = "default"
    dirty: dict[str, int] = field(default_factory=lambda: {k: 0 for k in DIRTY_KINDS})
    dirty_records: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "scale": self.scale, "dirty_rate": self.dirty_rate, "profile": self.profile,
                "counts": self.counts,
                "total": sum(self.counts.values()), "dirty": self.dirty, "dirty_documents": len(self.dirty_records),
                "dirty_records": self.dirty_records}


class SampleData:
    """Generates every collection's documents; `collection(name)` yields them in _id order."""

    def __init__(self, seed: int = 1, scale: float = 1.0, dirty_rate: float = 0.0, mapping: Mapping | None = None,
                 profile: str = "default"):
        if profile not in PROFILES:
            raise ValueError(f"unknown sample-data profile {profile!r} (known: {', '.join(PROFILES)})")
        self.seed, self.scale, self.dirty_rate, self.profile = seed, scale, dirty_rate, profile
        self._pool = _text_pool(seed) if profile == "runbook-bytes" else ""
        self._tail_runs: dict[tuple[str, int], int] = {}
        self.mapping = mapping or load_mapping("nextcrm")
        self.models = json.loads(MODEL_FILE.read_text())["models"]
        self.counts = collection_counts(scale)
        self.coll_index = {name: i + 1 for i, name in enumerate(PRODUCTION_COUNTS)}
        self.manifest = Manifest(seed, scale, dirty_rate, counts=dict(self.counts), profile=profile)
        self._links = self._build_links()

    # ---- ids -------------------------------------------------------------------------------
    def oid(self, coll: str, i: int) -> ObjectId:
        n = self.counts[coll]
        ts = int(EPOCH_START.timestamp()) + (i * SPAN_SECONDS) // max(n, 1)
        middle = bytes([self.coll_index[coll]]) + (_crc(f"{self.seed}") & 0xFFFFFFFF).to_bytes(4, "big")
        return ObjectId(ts.to_bytes(4, "big") + middle + (i & 0xFFFFFF).to_bytes(3, "big"))

    def _pick(self, rng: random.Random, coll: str) -> ObjectId:
        return self.oid(coll, rng.randrange(self.counts[coll]))

    # ---- many-to-many links, decided once so both sides agree --------------------------------
    def _build_links(self) -> dict[tuple[str, str], dict[int, list[int]]]:
        """(collection, field) -> {doc index: [other-side indexes]} for every junction source array."""
        links: dict[tuple[str, str], dict[int, list[int]]] = {}
        for j in self.mapping.junctions.values():
            rng = random.Random(_crc(f"{self.seed}:{j.name}"))
            left_coll = self.mapping.tables[j.left.references].collection
            right_coll = self.mapping.tables[j.right.references].collection
            src_by_holds = {s.holds: s for s in j.sources}
            n_left, n_right = self.counts[left_coll], self.counts[right_coll]
            per_left = max(1, min(4, round(2 * n_right / max(n_left, 1)))) if n_left else 0
            for s in j.sources:
                links[(s.collection, s.field)] = {}
            for li in range(n_left):
                if rng.random() < 0.45:
                    continue
                for ri in {rng.randrange(n_right) for _ in range(rng.randint(1, per_left))}:
                    roll = rng.random()
                    both = len(src_by_holds) == 2
                    # A link is on both sides (80%), or only on one (10% each): real data drifts.
                    put_right_on_left = "right" in src_by_holds and (not both or roll < 0.9)
                    put_left_on_right = "left" in src_by_holds and (not both or roll >= 0.1)
                    if put_right_on_left:
                        links[(src_by_holds["right"].collection, src_by_holds["right"].field)].setdefault(li, []).append(ri)
                    if put_left_on_right:
                        links[(src_by_holds["left"].collection, src_by_holds["left"].field)].setdefault(ri, []).append(li)
        return links

    # ---- values ---------------------------------------------------------------------------
    def _text(self, rng: random.Random, fname: str, coll: str, i: int) -> str:
        f = fname.lower()
        if "email" in f:
            return f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}{i}@example.{rng.choice(['com', 'cz', 'de'])}"
        if "phone" in f or f in ("fax", "phones"):
            return f"+{rng.randint(1, 420)} {rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
        if "city" in f:
            return rng.choice(CITIES)
        if "country" in f:
            return rng.choice(COUNTRIES)
        if "postal" in f or f.endswith("zip"):
            return f"{rng.randint(10000, 99999)}"
        if "street" in f or "address" in f:
            return f"{rng.choice(LAST)} {rng.randint(1, 200)}"
        if "url" in f or "website" in f or f.startswith("social_") or f == "avatar":
            return f"https://{rng.choice(WORDS)}.example.com/{coll.lower()}/{i}"
        if f in ("first_name", "firstname"):
            return rng.choice(FIRST)
        if f in ("last_name", "lastname"):
            return rng.choice(LAST)
        if f in ("name", "account_name", "company", "company_name", "username", "title", "document_name"):
            if coll in ("crm_Accounts", "MyAccount") or "company" in f:
                return f"{rng.choice(LAST)} {rng.choice(WORDS).title()} {rng.choice(COMPANY_SUFFIX)}"
            if coll in ("Users", "Employees", "crm_Contacts"):
                return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            return f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} #{i}"
        if "mimetype" in f:
            return rng.choice(MIMES)
        if f in ("priority",):
            return rng.choice(["low", "normal", "high", "critical"])
        if f in ("currency",):
            return rng.choice(["USD", "EUR", "CZK", "UAH"])
        if f in ("status", "visibility", "type", "lead_source"):
            return rng.choice(["ACTIVE", "INACTIVE", "public", "private", "Customer", "Partner"])
        if f in ("password", "servicepassword", "api_key", "notion_api_key", "servicekey"):
            return "$2b$10$" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(22))
        if f == "createdat":  # TodoList stores it as text
            return (EPOCH_START + timedelta(seconds=rng.randrange(SPAN_SECONDS))).isoformat()
        if f in LONG_TEXT_FIELDS and self._pool:
            return self._long_text(rng, min(LONG_TEXT_MAX, int(rng.expovariate(1 / LONG_TEXT_MEAN)) + 40))
        if f in LONG_TEXT_FIELDS:
            return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 18))).capitalize() + "."
        return f"{rng.choice(WORDS)}-{rng.randint(1, 9999)}"

    def _long_text(self, rng: random.Random, length: int) -> str:
        """`length` characters of prose: a slice of the seeded pool (drawing every word would take hours)."""
        start = rng.randrange(len(self._pool) - LONG_TEXT_MAX)
        return self._pool[start:start + length].strip().capitalize() + "."

    def _tail_run(self, coll: str, block: int) -> int:
        """How many heavy documents open this block of `coll` (seeded per block, drawn once)."""
        key = (coll, block)
        if key not in self._tail_runs:
            self._tail_runs[key] = random.Random(_crc(f"{self.seed}:{coll}:tail:{block}")).randint(0, TAIL_RUN_MAX)
        return self._tail_runs[key]

    def _heavy(self, rng: random.Random, coll: str, i: int) -> tuple[str, Any] | None:
        """(field, value) of a 1-5 MB tail document, if document i of `coll` is one (runbook-bytes only)."""
        key = TAIL_COLLECTIONS.get(coll)
        if not self._pool or key is None:
            return None
        if i % TAIL_BLOCK >= self._tail_run(coll, i // TAIL_BLOCK):
            return None
        size = rng.randint(*TAIL_BYTES)
        if key == "description":
            return key, "".join(self._long_text(rng, LONG_TEXT_MAX - 1) for _ in range(size // LONG_TEXT_MAX + 1))
        items = [{"name": f"{rng.choice(WORDS)} {n}", "qty": rng.randint(1, 99), "price": rng.randint(1, 99_999) / 4,
                  "note": self._long_text(rng, 60)} for n in range(size // 120 + 1)]
        return key, {"items": items, "note": rng.choice(WORDS)}

    def _value(self, rng: random.Random, coll: str, i: int, f: dict[str, Any], created: datetime) -> Any:
        ftype, fname = f["type"], f["name"]
        if f.get("object_id"):
            target = self._ref_target(coll, fname)
            if f["list"]:
                return [self._pick(rng, target) for _ in range(rng.randint(0, 3))]
            return self._pick(rng, target)
        if f["list"]:
            return [rng.choice(WORDS) for _ in range(rng.randint(0, 4))]
        if ftype == "String":
            return self._text(rng, fname, coll, i)
        if ftype == "Int":
            if fname in ("budget", "expected_revenue", "salary", "value"):
                return rng.randrange(0, 2_000_000, 50)
            if fname == "probability":
                return rng.randrange(0, 101, 5)
            return rng.randint(0, 500)
        if ftype == "Boolean":
            return rng.random() < 0.5
        if ftype == "DateTime":
            if fname in ("createdAt", "created_on", "date_created", "cratedAt"):
                return created
            return created + timedelta(days=rng.randint(0, 400), milliseconds=rng.randint(0, 86_400_000))
        if ftype == "Json":
            return {"items": [{"name": rng.choice(WORDS), "qty": rng.randint(1, 9), "price": rng.randint(1, 999) / 4}
                              for _ in range(rng.randint(0, 3))], "note": rng.choice(WORDS)} \
                if fname == "invoice_items" else [rng.choice(WORDS) for _ in range(rng.randint(0, 3))]
        if ftype in self.mapping.enums:
            return rng.choice(self.mapping.enums[ftype])
        raise ValueError(f"no generator for {coll}.{fname} of type {ftype}")

    def _ref_target(self, coll: str, fname: str) -> str:
        table = self.mapping.by_collection.get(coll)
        if table:
            for c in table.columns:
                if c.source == fname and c.references:
                    return self.mapping.tables[c.references].collection
        return UNRELATED_REFS.get(fname, "Users")

    # ---- documents ------------------------------------------------------------------------
    def stored_fields(self, coll: str) -> list[dict[str, Any]]:
        return [f for f in self.models[coll]["fields"]
                if "relation" not in f and f["type"] not in self.models and not f.get("id")]

    def collection(self, coll: str) -> Iterator[dict[str, Any]]:
        rng = random.Random(_crc(f"{self.seed}:{coll}:{self.scale}"))
        dirty_rng = random.Random(_crc(f"{self.seed}:{coll}:dirty:{self.dirty_rate}"))
        initial = self._initial_rows(coll)
        fields = self.stored_fields(coll)
        junction_fields = {s.field for _, s in self.mapping.junction_sources(coll)}
        table = self.mapping.by_collection.get(coll)
        required = {c.source for c in table.columns if c.not_null} if table else set()
        for i in range(self.counts[coll]):
            _id = self.oid(coll, i)
            created = _id.generation_time + timedelta(milliseconds=rng.randrange(1000))
            doc: dict[str, Any] = {"_id": _id}
            base = initial[i] if i < len(initial) else None
            for f in fields:
                key = f.get("stored_as", f["name"])
                if key in junction_fields:
                    doc[key] = [self.oid(self._ref_target_junction(coll, key), x)
                                for x in self._links[(coll, key)].get(i, [])]
                    continue
                if base is not None and f["name"] in base:
                    value = base[f["name"]]
                    if value is None and key in required:
                        value = self._value(rng, coll, i, f, created)
                    doc[key] = value
                    continue
                optional = f["optional"] and key not in required
                roll = rng.random()
                if optional and roll < 0.10:
                    continue  # unset, as Prisma leaves it
                if optional and roll < 0.15:
                    doc[key] = None
                    continue
                doc[key] = self._value(rng, coll, i, f, created)
            heavy = self._heavy(rng, coll, i)
            if heavy is not None:
                doc[heavy[0]] = heavy[1]
            if self.dirty_rate and dirty_rng.random() < self.dirty_rate:
                self._make_dirty(dirty_rng, coll, doc, fields, junction_fields)
            yield doc

    def _ref_target_junction(self, coll: str, fname: str) -> str:
        for j, s in self.mapping.junction_sources(coll):
            if s.field == fname:
                return self.mapping.tables[j.side(s.holds).references].collection
        raise KeyError(fname)

    def _initial_rows(self, coll: str) -> list[dict[str, Any]]:
        fname = INITIAL_FILES.get(coll)
        return json.loads((INITIAL_DIR / fname).read_text()) if fname else []

    def _make_dirty(self, rng: random.Random, coll: str, doc: dict, fields: list[dict], junction_fields: set) -> None:
        table = self.mapping.by_collection[coll]
        fk = [c.source for c in table.columns if c.references and doc.get(c.source) is not None]
        enum = [c.source for c in table.columns if c.type == "enum" and c.source in doc]
        req = [c.source for c in table.columns if c.required and c.fill is None and c.source in doc]
        strings = [c.source for c in table.columns if c.type == "text" and isinstance(doc.get(c.source), str)]
        dates = [c.source for c in table.columns if c.type == "timestamp" and doc.get(c.source) is not None]
        ints = [c.source for c in table.columns if c.type == "integer" and isinstance(doc.get(c.source), int)]
        arrays = sorted(junction_fields)
        options = {"dangling_reference": fk, "enum_invalid": enum, "missing_required": req, "nul_in_string": strings,
                   "date_out_of_range": dates, "number_as_string": ints, "duplicate_array_id": arrays}
        kinds = [k for k in DIRTY_KINDS if options[k]]
        if not kinds:
            return
        kind = rng.choice(kinds)
        key = rng.choice(options[kind])
        if kind == "dangling_reference":
            doc[key] = ObjectId(b"\xde\xad" + rng.randbytes(10))
        elif kind == "enum_invalid":
            doc[key] = f"NOT_AN_ENUM_{rng.randint(1, 99)}"
        elif kind == "missing_required":
            del doc[key]
        elif kind == "nul_in_string":
            s = doc[key]
            pos = rng.randint(0, len(s))
            doc[key] = s[:pos] + "\x00" + s[pos:]
        elif kind == "date_out_of_range":
            # Year ~300000: a valid BSON date that no PostgreSQL timestamp can hold.
            doc[key] = DatetimeMS(9_400_000_000_000_000 * (1 if rng.random() < 0.5 else -1))
        elif kind == "number_as_string":
            doc[key] = str(doc[key])
        elif kind == "duplicate_array_id":
            arr = doc.get(key) or []
            if not arr:
                arr = [self._pick(rng, self._ref_target_junction(coll, key))]
            doc[key] = arr + [arr[0]]
        self.manifest.dirty[kind] += 1
        self.manifest.dirty_records.append([kind, coll, str(doc["_id"]), key])


def _text_pool(seed: int, size: int = 1 << 22) -> str:
    """About `size` characters of seeded words (a few accented), from which long texts are sliced."""
    rng = random.Random(_crc(f"{seed}:pool"))
    words = WORDS + LAST + CITIES
    out, n = [], 0
    while n < size:
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(6, 24))).capitalize() + ". "
        out.append(sentence)
        n += len(sentence)
    return "".join(out)


def write_dump(out: str | Path, db: str = "nextcrm", seed: int = 1, scale: float = 1.0, dirty_rate: float = 0.0,
               gzip_files: bool = False, progress=None, profile: str = "default") -> Manifest:
    data = SampleData(seed=seed, scale=scale, dirty_rate=dirty_rate, profile=profile)
    writer = DumpWriter(out, db, gzip_files=gzip_files)
    for coll in PRODUCTION_COUNTS:
        writer.write_collection(coll, data.collection(coll))
        if progress:
            progress(coll, data.counts[coll])
    _write_manifest(Path(out) / "sample-data-manifest.json", data.manifest)
    return data.manifest


def write_live(client, db: str = "nextcrm", seed: int = 1, scale: float = 1.0, dirty_rate: float = 0.0,
               batch: int = 2000, progress=None, manifest_path: str | Path | None = None,
               profile: str = "default") -> Manifest:
    data = SampleData(seed=seed, scale=scale, dirty_rate=dirty_rate, profile=profile)
    database = client[db]
    for coll in PRODUCTION_COUNTS:
        database.drop_collection(coll)
        buf: list[dict] = []
        for doc in data.collection(coll):
            buf.append(doc)
            if len(buf) >= batch:
                database[coll].insert_many(buf, ordered=True)
                buf.clear()
        if buf:
            database[coll].insert_many(buf, ordered=True)
        if progress:
            progress(coll, data.counts[coll])
    if manifest_path:
        _write_manifest(Path(manifest_path), data.manifest)
    return data.manifest


def _write_manifest(path: Path, manifest: Manifest) -> None:
    with open_private(path) as f:
        json.dump(manifest.to_json(), f, indent=1)
