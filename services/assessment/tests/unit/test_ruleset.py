"""The organization's rule set, given/when/then: an override a reassessment would never read
is refused, and the NDI's numbers hold on both of its scales. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from assessment.domain import measures, ruleset
from assessment.domain.errors import (
    DuplicateThresholdError,
    UnknownMeasureError,
    UnknownThresholdKeyError,
)
from assessment.domain.measures import MeasureThresholds

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
NINE = MeasureThresholds(mcid=9, mdc=9)


def change(**overrides: MeasureThresholds) -> list[ruleset.RuleSetChanged]:
    return ruleset.decide(ruleset.ChangeRuleSet(
        organization_id="org", measures=overrides, changed_by="Olivia", now=NOW),
        ruleset.INITIAL)


def rules_with(**overrides: MeasureThresholds) -> ruleset.RuleSet:
    [changed] = change(**overrides)
    return ruleset.evolve(ruleset.INITIAL, changed)


# -- unknown and unused keys -------------------------------------------------------------

def test_given_an_unknown_score_key_when_the_ruleset_changes_then_refused_naming_valid_keys():
    with pytest.raises(UnknownThresholdKeyError) as refused:
        change(**{"lefs:lefs_typo": NINE})
    assert refused.value.type_slug == "unknown-threshold-key"
    assert refused.value.extensions == {"key": "lefs:lefs_typo", "valid": ["lefs", "lefs:lefs"]}
    assert "lefs:lefs_typo" in refused.value.detail and "lefs:lefs" in refused.value.detail


def test_given_koos_alone_when_the_ruleset_changes_then_refused_naming_its_subscales():
    with pytest.raises(UnknownThresholdKeyError) as refused:
        change(koos=NINE)
    assert refused.value.extensions["valid"] == [
        "koos:koos_pain", "koos:koos_symptoms", "koos:koos_adl", "koos:koos_sport_rec",
        "koos:koos_qol"]


def test_given_a_groc_threshold_when_the_ruleset_changes_then_refused_since_none_is_read():
    for key in ("groc", "groc:groc"):
        with pytest.raises(UnknownThresholdKeyError) as refused:
            change(**{key: NINE})
        assert refused.value.extensions == {"key": key, "valid": []}


def test_given_an_unknown_measure_when_the_ruleset_changes_then_refused_naming_the_key():
    with pytest.raises(UnknownMeasureError) as refused:
        change(**{"lfes:lefs": NINE})
    assert refused.value.extensions["key"] == "lfes:lefs"
    assert "lefs:lefs" in refused.value.extensions["valid"]


def test_given_two_keys_for_one_score_when_the_ruleset_changes_then_refused():
    with pytest.raises(DuplicateThresholdError) as refused:
        change(**{"lefs": NINE, "lefs:lefs": MeasureThresholds(mcid=12)})
    assert refused.value.extensions == {"keys": ["lefs", "lefs:lefs"]}


def test_given_every_key_a_score_reads_when_the_ruleset_changes_then_each_is_kept():
    keys = {"koos:koos_pain": NINE, "psfs": NINE, "psfs:psfs_01": NINE, "spadi:spadi_pain": NINE,
            "lefs": NINE, "ndi:ndi_pct": MeasureThresholds(mcid=15)}
    assert rules_with(**keys).measures == keys


# -- the NDI: one total on two scales ----------------------------------------------------

NDI = measures.CATALOG["ndi"]


def test_given_an_ndi_override_then_the_percent_scale_reads_it_doubled():
    rules = rules_with(ndi=MeasureThresholds(mcid=8, mdc=11, mcid_pct=30))
    assert rules.thresholds(NDI, "ndi") == MeasureThresholds(mcid=8, mdc=11, mcid_pct=30)
    assert rules.thresholds(NDI, "ndi_pct") == MeasureThresholds(mcid=16, mdc=22, mcid_pct=30)


def test_given_an_ndi_percent_override_then_the_0_50_scale_reads_it_halved():
    rules = rules_with(**{"ndi:ndi_pct": MeasureThresholds(mcid=20, mdc=20.4)})
    assert rules.thresholds(NDI, "ndi") == MeasureThresholds(mcid=10, mdc=10.2)


def test_given_both_ndi_scales_overridden_when_the_ruleset_changes_then_refused():
    with pytest.raises(DuplicateThresholdError):
        change(**{"ndi": MeasureThresholds(mcid=8), "ndi:ndi_pct": MeasureThresholds(mcid=20)})


def test_given_an_ndi_override_recorded_before_the_rule_then_both_scales_still_agree():
    recorded = ruleset.RuleSet(version=2, measures={"ndi": MeasureThresholds(mcid=7.5, mdc=8)})
    assert recorded.thresholds(NDI, "ndi_pct") == MeasureThresholds(mcid=15, mdc=16)


def test_given_no_override_then_the_catalogs_defaults_apply_on_both_scales():
    assert ruleset.INITIAL.thresholds(NDI, "ndi") == MeasureThresholds(mcid=7.5, mdc=10.2)
    assert ruleset.INITIAL.thresholds(NDI, "ndi_pct") == MeasureThresholds(mcid=15, mdc=20.4)
