"""Which topic and which key an event's record gets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from relay.events.catalog import CATEGORY_BY_EVENT, DEFAULT_KEY_FIELDS, KNOWN_EVENTS
from relay.settings import TopicSettings


class TopicRouter:
    """Event name -> topic: explicit per-event entry, then first matching pattern, then template.

    Unknown events go to ``unknown_event_topic`` unless an entry or a pattern names them, so
    an operator can route a new UltraCart event before relay's catalog knows it. Answers
    are memoised: the set of event names is small, and routing sits on the hot path.
    """

    def __init__(self, settings: TopicSettings) -> None:
        self._settings = settings
        self._cache: dict[str, str] = {}

    def topic_for(self, event_name: str) -> str:
        topic = self._cache.get(event_name)
        if topic is None:
            topic = self._resolve(event_name)
            if len(self._cache) < 4096:  # hostile senders must not grow it without bound
                self._cache[event_name] = topic
        return topic

    def _resolve(self, event_name: str) -> str:
        explicit = self._settings.events.get(event_name)
        if explicit:
            return explicit
        for pattern in self._settings.patterns:
            if fnmatchcase(event_name, pattern.match):
                return pattern.topic.replace("{event}", event_name)
        if event_name not in KNOWN_EVENTS:
            return self._settings.unknown_event_topic
        return self._settings.template.replace("{event}", event_name)

    def all_known_topics(self) -> list[str]:
        """Every topic relay can write for the catalog, plus unknown and dead-letter topics."""
        topics = {self.topic_for(name) for name in KNOWN_EVENTS}
        topics.add(self._settings.unknown_event_topic)
        topics.add(self._settings.dead_letter_topic)
        return sorted(topics)


class KeyPicker:
    """Event -> record key: the first present identity field of the object.

    Configured entries (by event name, or a glob such as ``order_*``) take precedence over
    the defaults by category. No identity found means no key: the record still lands,
    spread over partitions, rather than being refused.
    """

    def __init__(self, overrides: Mapping[str, tuple[str, ...]]) -> None:
        self._overrides = overrides
        self._cache: dict[str, tuple[str, ...]] = {}

    def fields_for(self, event_name: str) -> tuple[str, ...]:
        fields = self._cache.get(event_name)
        if fields is None:
            fields = self._resolve(event_name)
            if len(self._cache) < 4096:
                self._cache[event_name] = fields
        return fields

    def _resolve(self, event_name: str) -> tuple[str, ...]:
        if event_name in self._overrides:
            return self._overrides[event_name]
        for pattern, fields in self._overrides.items():
            if fnmatchcase(event_name, pattern):
                return fields
        category = CATEGORY_BY_EVENT.get(event_name) or _guess_category(event_name)
        return DEFAULT_KEY_FIELDS.get(category, ()) if category else ()

    @staticmethod
    def pick(values: Sequence[Any]) -> bytes | None:
        """The key from the values of ``fields_for``'s fields, in the same order."""
        for value in values:
            if isinstance(value, str) and value:
                return value.encode()
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value).encode()
        return None


def _guess_category(event_name: str) -> str | None:
    # A future "order_something" event most likely carries an Order; key it like one.
    for category in sorted(DEFAULT_KEY_FIELDS, key=len, reverse=True):
        if event_name.startswith(category + "_"):
            return category
    return None
