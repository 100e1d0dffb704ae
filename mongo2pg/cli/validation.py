"""`validate`: every record, into the validation report."""

from __future__ import annotations

from .common import need


def cmd_validate(args) -> int:
    from ..validation import ValidateOptions, markdown_summary, validate

    need(args, "pg-uri")
    report = validate(ValidateOptions.from_values(vars(args)))

    print("\n".join(markdown_summary(report).splitlines()[:9]))
    print(f"Report: {args.report} (and {args.report.rsplit('.', 1)[0]}.md)")
    return 0 if report["overallStatus"] == "PASS" else 1
