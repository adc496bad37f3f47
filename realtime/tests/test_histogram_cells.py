"""realtime.histogram_cells against the installed prometheus_client: an upgrade fails here, loudly,
before it can silently skew gateway_callback_seconds."""

from __future__ import annotations

import importlib.metadata
import math

from prometheus_client import CollectorRegistry, Histogram

from realtime import histogram_cells

RECHECK = (
    "realtime.histogram_cells reads prometheus_client's private histogram cells; re-read "
    "prometheus_client.metrics.Histogram (_metric_init, observe) for the new version, then update "
    "histogram_cells (and its PINNED) or replace it with a public API if one exists now"
)


def _histogram() -> Histogram:
    return Histogram("t_seconds", "t", ["kind"], buckets=(0.001, 0.01, 1.0), registry=CollectorRegistry())


def test_issue10_item2_prometheus_client_is_the_version_the_histogram_cells_were_checked_on() -> None:
    installed = importlib.metadata.version("prometheus_client")
    assert installed == histogram_cells.PINNED, (
        f"prometheus_client {installed}, checked on {histogram_cells.PINNED}: {RECHECK}"
    )


def test_issue10_item2_the_private_names_used_have_the_shape_relied_on() -> None:
    histogram = _histogram()
    bounds = histogram_cells.bucket_bounds(histogram)
    assert bounds == [0.001, 0.01, 1.0, math.inf], RECHECK
    child = histogram.labels("k")
    assert callable(getattr(getattr(child, "_sum", None), "inc", None)), RECHECK
    cells = getattr(child, "_buckets", None)
    assert isinstance(cells, list), RECHECK
    assert len(cells) == len(bounds), RECHECK
    assert all(callable(getattr(cell, "inc", None)) and callable(getattr(cell, "get", None)) for cell in cells), RECHECK
    # Buckets are stored non-cumulatively: one observation increments one cell, the first bound >= it.
    child.observe(0.005)
    assert [cell.get() for cell in cells] == [0, 1, 0, 0], RECHECK


def test_issue10_item2_added_observations_export_as_the_same_observations_one_by_one() -> None:
    timings = [0.0001, 0.001, 0.004, 0.004, 0.5, 7.0]  # on a bound, between, beyond the last
    one_by_one, batched = _histogram(), _histogram()
    for elapsed in timings:
        one_by_one.labels("k").observe(elapsed)
    bounds = histogram_cells.bucket_bounds(batched)
    counts = [0] * len(bounds)
    for elapsed in timings:
        counts[next(i for i, bound in enumerate(bounds) if elapsed <= bound)] += 1
    histogram_cells.add_observations(batched.labels("k"), sum(timings), counts)

    def exported(histogram: Histogram) -> list[tuple[str, dict[str, str], float]]:
        [metric] = histogram.collect()
        return [(s.name, s.labels, round(s.value, 9)) for s in metric.samples if not s.name.endswith("_created")]

    assert exported(batched) == exported(one_by_one)
    assert ("t_seconds_count", {"kind": "k"}, len(timings)) in exported(batched)
