"""Plan checks a session's quick measures against each score's scale; assessment's catalog
is where the scales are defined. Plan restates them (services share only the contracts), so
this holds the two together: a score the catalog gains or changes fails here until plan's
copy follows."""

from __future__ import annotations

from assessment.domain.measures.catalog import CATALOG
from plan.domain.scales import SCALES


def test_plan_checks_every_catalog_score_on_the_catalogs_own_scale_and_precision():
    catalog = {score.code: (score.low, score.high, score.decimals)
               for measure in CATALOG.values() for score in measure.scores}
    restated = {key: (scale.low, scale.high, scale.decimals) for key, scale in SCALES.items()}
    assert {k: v for k, v in restated.items() if k in catalog} == catalog
    # PSFS activities are scored one by one as psfs_01 … psfs_05 besides the mean.
    assert set(restated) - set(catalog) <= {f"psfs_0{n}" for n in range(1, 6)}
