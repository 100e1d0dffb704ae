"""Names of what MongoDB never had (junction tables and their columns, indexes): a Naming.

`prisma` (the default) follows Prisma's own conventions on PostgreSQL: indexes `<table>_<columns>_idx`,
unique ones `..._key`; a junction laid out as Prisma's implicit m:n table (from_prisma.py), so the new
schema keeps the m:n list fields and the app's `connect`/`include` calls work as they did; every
foreign-key column indexed (PostgreSQL indexes none by itself, and every relation is read through them). `nextcrm` is NextCRM's
PostgreSQL-era choices for its ten junctions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


def singular_snake(table: str) -> str:
    """crm_Opportunities -> crm_opportunity, Users -> user, Boards -> board (a plain English singular)."""
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", table).lower()
    if s.endswith("ies"):
        return s[:-3] + "y"
    if s.endswith("sses") or s.endswith("xes"):
        return s[:-2]
    return s[:-1] if s.endswith("s") and not s.endswith("ss") else s


@dataclass(frozen=True)
class Naming:
    name: str = "prisma"
    index_foreign_keys: bool = True
    index_junction_columns: bool = True
    # Junctions as Prisma's implicit m:n tables: `_<relation>`, column A for the model whose name sorts first
    # (for a self-relation, the side whose relation field's name sorts first), B for the other, the primary
    # key (A, B) and an index on B, as Prisma itself creates them on PostgreSQL.
    implicit_m2n: bool = False
    # relation name -> (junction table, (left column, right column), (left table, right table))
    junctions: dict[str, tuple[str, tuple[str, str], tuple[str, str]]] = field(default_factory=dict)

    def index_name(self, table: str, columns: tuple[str, ...], unique: bool) -> str:
        return f"{table}_{'_'.join(columns)}_{'key' if unique else 'idx'}"

    def junction(self, relation: str, tables: list[str]) -> tuple[str, tuple[str, str], tuple[str, str]]:
        if relation in self.junctions:
            return self.junctions[relation]
        left, right = sorted(tables)
        lcol, rcol = f"{singular_snake(left)}_id", f"{singular_snake(right)}_id"
        if lcol == rcol:  # a self-relation: the second side is the related one
            rcol = f"related_{rcol}"
        return relation, (lcol, rcol), (left, right)


def _docs(relation_table: str, name: str, column: str) -> tuple[str, tuple[str, str], tuple[str, str]]:
    return name, ("document_id", column), ("Documents", relation_table)


NEXTCRM = Naming(name="nextcrm", junctions={
    "DocumentsToInvoices": _docs("Invoices", "DocumentsToInvoices", "invoice_id"),
    "DocumentsTocrm_Opportunities": _docs("crm_Opportunities", "DocumentsToOpportunities", "opportunity_id"),
    "DocumentsTocrm_Contacts": _docs("crm_Contacts", "DocumentsToContacts", "contact_id"),
    "DocumentsToTasks": _docs("Tasks", "DocumentsToTasks", "task_id"),
    "DocumentsTocrm_Accounts_Tasks": _docs("crm_Accounts_Tasks", "DocumentsToCrmAccountsTasks",
                                           "crm_accounts_task_id"),
    "DocumentsTocrm_Leads": _docs("crm_Leads", "DocumentsToLeads", "lead_id"),
    "DocumentsTocrm_Accounts": _docs("crm_Accounts", "DocumentsToAccounts", "account_id"),
    "crm_ContactsTocrm_Opportunities": ("ContactsToOpportunities", ("contact_id", "opportunity_id"),
                                        ("crm_Contacts", "crm_Opportunities")),
    "watching_accounts": ("AccountWatchers", ("account_id", "user_id"), ("crm_Accounts", "Users")),
    "watching_users": ("BoardWatchers", ("board_id", "user_id"), ("Boards", "Users")),
})
PRESETS = {"prisma": Naming(implicit_m2n=True, index_junction_columns=False), "nextcrm": NEXTCRM}
