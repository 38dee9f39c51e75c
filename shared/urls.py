"""URLs fit for a log line or a terminal: the one place a password is masked."""

from __future__ import annotations


def mask_password(url: str) -> str:
    """The URL with the password of its user info replaced by `***` (hosts, path and query
    kept; a MongoDB URL may list several hosts)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hosts = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hosts}{tail}"
