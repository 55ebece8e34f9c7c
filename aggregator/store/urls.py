"""Database URLs in messages. Apart from the engine table so that engines can use it."""

from __future__ import annotations


def display_url(url: str) -> str:
    """Any database URL without its password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, host = rest.partition("@")
    return f"{scheme}://{userinfo.split(':', 1)[0]}@{host}"
