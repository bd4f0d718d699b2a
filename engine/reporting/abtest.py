"""A/B results per variant with the two-proportion z-test (issue 19), for the reports.

The figures live in :mod:`engine.engagement.abstats` (below delivery, so the beat decides
an A/B winner rule on exactly the figures this report shows); this module keeps the
reporting floor's name for them.
"""

from __future__ import annotations

from engine.engagement.abstats import (
    SIGNIFICANCE,
    VariantRow,
    ZTest,
    two_proportion_z,
    variant_results,
)

__all__ = ["SIGNIFICANCE", "VariantRow", "ZTest", "two_proportion_z", "variant_results"]
