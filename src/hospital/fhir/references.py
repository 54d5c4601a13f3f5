"""Reference resolution within a bundle (pure): what a reference points at, as ``Type/id``.

- ``urn:uuid:…`` (and any other ``fullUrl``) -> the ``Type/id`` of the bundle entry it names;
  one naming no entry raises :class:`Dangling` (the caller keeps it and flags it);
- conditional references ``Type?identifier=system|value`` -> the entry with that identifier
  when the bundle holds one, otherwise ``Type/<uuid5 of the query>``: the same identifier
  always gives the same key, in every file, so rows join across bundles; any other query
  syntax raises :class:`Unresolvable`;
- ``#local`` (contained) and plain ``Type/id`` / absolute URLs are kept as they are.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl

# Namespace for keys of resources known only through a conditional reference.
CONDITIONAL_NAMESPACE: Final = uuid.UUID("6f2b8a3e-2f1c-5d4e-9a7b-3c1d2e4f5a6b")
TYPE_RE: Final = re.compile(r"^[A-Z][A-Za-z]+$")


class Unresolvable(Exception):
    """A malformed reference: its resource is quarantined."""


class Dangling(Unresolvable):
    """A bundle-local (urn) reference to no usable entry: kept and flagged, not quarantined."""


def conditional_key(resource_type: str, system: str | None, value: str) -> str:
    """The stable id of a resource known only by an identifier."""
    return str(uuid.uuid5(CONDITIONAL_NAMESPACE, f"{resource_type}|{system or ''}|{value}"))


def _split_identifier(token: str) -> tuple[str | None, str]:
    if "|" in token:
        system, value = token.split("|", 1)
        return (system or None), value
    return None, token


@dataclass
class ReferenceIndex:
    """What the references of one bundle may point at."""

    full_urls: dict[str, str] = field(default_factory=dict)  # fullUrl -> Type/id
    identifiers: dict[tuple[str, str | None, str], str] = field(default_factory=dict)
    # Bundles repeat the same few conditional references thousands of times.
    _cache: dict[str, str] = field(default_factory=dict)

    def add(self, full_url: object, resource: Mapping[str, Any]) -> None:
        rtype, rid = resource["resourceType"], resource["id"]
        target = f"{rtype}/{rid}"
        if isinstance(full_url, str) and full_url:
            self.full_urls[full_url] = target
        for ident in resource.get("identifier") or []:
            if isinstance(ident, Mapping) and isinstance(ident.get("value"), str):
                system = ident.get("system") if isinstance(ident.get("system"), str) else None
                self.identifiers.setdefault((rtype, system, ident["value"]), target)
                self.identifiers.setdefault((rtype, None, ident["value"]), target)

    def resolve(self, reference: str) -> str:
        """The ``Type/id`` (or unchanged) form of ``reference``; raises Unresolvable."""
        target = self._cache.get(reference)
        if target is None:
            target = self._cache[reference] = self._resolve(reference)
        return target

    def _resolve(self, reference: str) -> str:
        if reference.startswith("#"):
            return reference
        if reference.startswith(("urn:uuid:", "urn:oid:")):
            target = self.full_urls.get(reference)
            if target is None:
                raise Dangling(f"reference {reference!r} names no entry of the bundle")
            return target
        if "?" in reference:
            return self._conditional(reference)
        if reference in self.full_urls:
            return self.full_urls[reference]
        return reference

    def _conditional(self, reference: str) -> str:
        rtype, _, query = reference.partition("?")
        params = parse_qsl(query, keep_blank_values=True)
        if not TYPE_RE.match(rtype) or len(params) != 1 or params[0][0] != "identifier":
            raise Unresolvable(
                f"conditional reference {reference!r}: only Type?identifier=system|value "
                "is supported"
            )
        system, value = _split_identifier(params[0][1])
        if not value:
            raise Unresolvable(f"conditional reference {reference!r} has no identifier value")
        target = self.identifiers.get((rtype, system, value))
        if target is None:
            target = f"{rtype}/{conditional_key(rtype, system, value)}"
        return target


_CONTAINERS: Final = (dict, list, tuple)
_SCALARS: Final = (int, float, bool, type(None))


def collect_references(
    node: dict[str, Any] | list[Any] | tuple[Any, ...],
    resolve: Callable[[str], str],
    out: list[tuple[dict[str, Any], str]],
) -> None:
    """Append ``(holder, target)`` for every ``"reference": str`` under ``node`` that resolves
    to something else; raises Unresolvable. Nothing is changed yet.

    Hot (every node of every resource): exact-type tests first, isinstance only for the rare
    subclass, so that it costs about what a second parse of the resource would.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            kind = type(value)
            if kind is dict or kind is list:
                collect_references(value, resolve, out)
            elif kind is str or (kind not in _SCALARS and isinstance(value, str)):
                if key == "reference":
                    target = resolve(value)
                    if target != value:
                        out.append((node, target))
            elif kind not in _SCALARS and isinstance(value, _CONTAINERS):
                collect_references(value, resolve, out)
    else:
        for value in node:
            kind = type(value)
            if (kind is dict or kind is list) or (
                kind is not str and kind not in _SCALARS and isinstance(value, _CONTAINERS)
            ):
                collect_references(value, resolve, out)
