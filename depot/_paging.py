"""Reading a paged listing (AIP-158): the SDK's one loop over page tokens.

A listing is read by asking with the last page's ``next_page_token`` until
a page comes back without one. The token is opaque: the SDK never builds or
inspects it, only hands it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar


class _PageResponse(Protocol):
    @property
    def next_page_token(self) -> str: ...


_Page = TypeVar("_Page", bound=_PageResponse)
_Item = TypeVar("_Item")


def pages(fetch: Callable[[str], _Page]) -> Iterator[_Page]:
    """Every page of a listing: ``fetch("")``, then ``fetch(token)`` until a page has no next token."""
    token = ""
    while True:
        page = fetch(token)
        yield page
        token = page.next_page_token
        if not token:
            return


def all_items(fetch: Callable[[str], _Page], items: Callable[[_Page], Iterable[_Item]]) -> list[_Item]:
    """Every item of a listing, all its pages read: ``items(page)`` picks a page's items."""
    return [item for page in pages(fetch) for item in items(page)]
