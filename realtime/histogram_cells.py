"""The one place that reads prometheus_client's private histogram internals.

Why: on the callback workers' event loop, a second's worth of callback timings is added to the
gateway_callback_seconds histogram at once (realtime.observability). prometheus_client's public
API has only `observe(amount)`, one locked write per bucket and per sum to a multiprocess mmap
file for every callback; adding a count per bucket needs the labelled child's value cells. There
is no public extension point for this, so it is isolated here.

What is relied on (checked against the installed version by realtime/tests/test_histogram_cells.py,
which fails naming what to re-check when prometheus_client is not PINNED):
- `Histogram._upper_bounds`: the sorted bounds, ending with +Inf (the same on every child);
- a child's `_sum` cell and its `_buckets` list (one cell per bound, NON-cumulative: observe()
  increments only the first bucket whose bound is >= the amount), each cell with `inc(amount)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Histogram

PINNED = "0.26.0"  # requirements.txt; re-read Histogram._metric_init and observe() before changing it


def bucket_bounds(histogram: Histogram) -> list[float]:
    """The histogram's upper bounds, in order, ending with +Inf."""
    return list(histogram._upper_bounds)


def add_observations(child: Any, total: float, counts: Sequence[int]) -> None:
    """What observe() would have written for observations summing to `total`, `counts[i]` of them
    falling first under bound i (as counted against bucket_bounds): one write per non-empty cell."""
    child._sum.inc(total)
    for cell, count in zip(child._buckets, counts, strict=True):
        if count:
            cell.inc(count)
