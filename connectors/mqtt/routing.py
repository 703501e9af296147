"""Which topic template a topic matches, with its parts, remembered per topic.

Matching tries each template's regular expression in turn, for every message; a gateway hears the
same device topics over and over, so the answer (and the envelope group it leads to) is kept per
topic string, up to ``MAX_TOPICS`` of them: past that the oldest answers are forgotten and worked
out again when their topic comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectors.mqtt.config import CompiledRoute

MAX_TOPICS = 20_000  # ~0.5 KB each


@dataclass(frozen=True, slots=True)
class TopicMatch:
    route: CompiledRoute
    codec: str  # the route's
    parts: dict[str, str]  # shared by every message on the topic: read, never changed
    group: tuple[str, str, str]  # template, variant, and the topic with ``envelope_per_topic``


class TopicRouter:
    def __init__(self, routes: Sequence[CompiledRoute], *, envelope_per_topic: bool,
                 max_topics: int = MAX_TOPICS) -> None:
        self._routes = tuple(routes)
        self._per_topic = envelope_per_topic
        self._max_topics = max_topics
        self._known: dict[str, TopicMatch | None] = {}

    def match(self, topic: str) -> TopicMatch | None:
        """The first template that matches ``topic`` (None: unrouted)."""
        try:
            return self._known[topic]
        except KeyError:
            pass
        found = self._match(topic)
        if len(self._known) >= self._max_topics:
            del self._known[next(iter(self._known))]  # the oldest entry
        self._known[topic] = found
        return found

    def _match(self, topic: str) -> TopicMatch | None:
        for route in self._routes:
            if (parts := route.match(topic)) is not None:
                group = (route.route.template, route.route.effective_variant, topic if self._per_topic else "")
                return TopicMatch(route=route, codec=route.route.codec, parts=parts, group=group)
        return None
