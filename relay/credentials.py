"""``user:password``: the one reading of an HTTP Basic pair, for every place that takes one.

relay's settings, its credentials file, webhooks.toml's ``[webhook.basic]`` and compose's
credential generator all accept a pair; they share this function so that a pair one of them
takes is never refused by another (an empty password once passed one check and not the next).
"""

from __future__ import annotations

from pathlib import Path

from relay.secrets import Secret

# Said after the place the pair came from; it never quotes the pair, which is a secret.
PAIR_RULE = 'must be "user:password" with neither part empty'


def parse_pair(text: str) -> tuple[str, str]:
    """Split ``user:password`` at the first colon; raise ``ValueError(PAIR_RULE)`` if either
    side is empty. A password may itself contain colons."""
    username, sep, password = text.strip().partition(":")
    if not sep or not username or not password:
        raise ValueError(PAIR_RULE)
    return username, password


def pair_lines(text: str) -> list[tuple[int, str]]:
    """The lines of a credentials file that hold a pair, with their 1-based numbers: blank
    lines and ``#`` comments are skipped."""
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.strip().startswith("#")
    ]


def read_credentials_file(path: Path) -> list[Secret]:
    """One ``user:password`` per line; blank lines and ``#`` comments are ignored."""
    pairs = []
    for number, text in pair_lines(path.read_text(encoding="utf-8")):
        try:
            parse_pair(text)
        except ValueError:
            raise ValueError(f"{path}:{number} {PAIR_RULE}") from None
        pairs.append(Secret(text))
    return pairs
