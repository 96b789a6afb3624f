"""The server's two guards, pure: a random token every request must carry, and a scrubber that removes every
secret of the lab (shared keys, private keys) from text before it leaves the server."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

TOKEN_HEADER = "X-Lab-Token"
_PEM_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)
MASK = "[secret removed]"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def request_token(path: str, headers: Mapping[str, str]) -> str:
    """The token a request carries: the `token` query parameter, else the X-Lab-Token header."""
    values = parse_qs(urlsplit(path).query).get("token")
    return values[0] if values else headers.get(TOKEN_HEADER, "")


def authorized(path: str, headers: Mapping[str, str], token: str) -> bool:
    given = request_token(path, headers)
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def redact(text: str, secret_values: Iterable[str]) -> str:
    """`text` with every secret value and any PEM private key replaced by a mask (longest first, so a key
    that contains another is removed whole)."""
    for value in sorted({s for s in secret_values if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return _PEM_KEY.sub(MASK, text)
