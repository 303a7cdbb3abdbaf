"""Pagination for Fake Store shaped APIs, which return a plain JSON list per page."""

from __future__ import annotations

from typing import Any

from dlt.sources.helpers.rest_client.paginators import OffsetPaginator


class ListOffsetPaginator(OffsetPaginator):
    """limit/offset paging over plain lists: the last page is the first one shorter than limit.

    No `total` field is needed, and an API that ignores `offset` and returns its whole list at once
    (the public Fake Store API does, for lists shorter than the limit) is read in one request.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit=limit, total_path=None)

    def _stop_after_this_page(self, data: list[Any] | None = None) -> bool:
        return not data or len(data) < self.limit
