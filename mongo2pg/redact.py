"""Redaction of credentials in connection strings and free text."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_URI_WITH_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*)(?::(?P<pw>[^@\s]*))?@")
_SECRET_PARAMS = {"password", "sslpassword", "tlscertificatekeyfilepassword", "authmechanismproperties"}
_KV_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd)\s*=\s*('[^']*'|\S+)")


def redact_uri(uri: str) -> str:
    """Replace the password (and secret query parameters) of a URI with ***."""
    if not uri:
        return uri
    if "://" not in uri:
        return _KV_PASSWORD.sub(lambda m: f"{m.group(1)}=***", uri)
    try:
        parts = urlsplit(uri)
    except ValueError:
        return redact_text(uri)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*/:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Redact every URI password in free text (error messages), and any listed secret."""
    out = _URI_WITH_USERINFO.sub(
        lambda m: f"{m.group('scheme')}{m.group('user')}{':***' if m.group('pw') is not None else ''}@", text
    )
    out = _KV_PASSWORD.sub(lambda m: f"{m.group(1)}=***", out)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return out


def password_of(uri: str) -> str:
    """The password inside a URI, so callers can scrub it from driver messages."""
    try:
        return urlsplit(uri).password or ""
    except ValueError:
        return ""
