"""CLINICAL.md §3.1 episode typing, given/when/then: the rule on its own (the evaluation
decider applying it at completion is in test_evaluation_decider.py). Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from assessment.domain.episode import (
    EpisodeFacts,
    EpisodeThresholds,
    symptom_weeks,
    type_episode,
)
from assessment.domain.errors import OnsetInFutureError

DEFAULTS = EpisodeThresholds()
TODAY = datetime(2027, 3, 1, 9, 0, tzinfo=UTC).date()


def typed(weeks: float | None, drivers: int = 1, tsk: float | None = None,
          thresholds: EpisodeThresholds = DEFAULTS) -> str | None:
    return type_episode(EpisodeFacts(weeks, drivers, tsk), thresholds).episode_type


# -- the rule -------------------------------------------------------------------------------

def test_given_section_5_runner_10_weeks_one_driver_tsk_31_then_acute_clear_driver():
    assert typed(10, 1, 31) == "acute_clear_driver"


def test_given_symptoms_for_12_weeks_then_chronic_and_just_under_12_acute():
    assert typed(12) == "chronic_multifactor"
    assert typed(83 / 7) == "acute_clear_driver"  # 11 weeks and 6 days


def test_given_two_drivers_then_chronic_however_recent_the_symptoms():
    assert typed(2, drivers=2) == "chronic_multifactor"


def test_given_tsk_above_37_then_chronic_and_at_37_not():
    assert typed(4, tsk=38) == "chronic_multifactor"
    assert typed(4, tsk=37) == "acute_clear_driver"


def test_given_no_tsk_recorded_then_it_raises_no_criterion():
    assert typed(4, tsk=None) == "acute_clear_driver"


def test_given_no_onset_and_no_chronic_criterion_then_the_facts_decide_nothing():
    typing = type_episode(EpisodeFacts(None, 1, 31), DEFAULTS)
    assert typing.episode_type is None and typing.because == ("no symptom onset recorded",)


def test_given_no_onset_but_a_chronic_criterion_then_chronic():
    assert typed(None, drivers=2) == "chronic_multifactor"
    assert typed(None, tsk=45) == "chronic_multifactor"


def test_given_the_organizations_cutoffs_then_they_decide_instead_of_the_defaults():
    stricter = EpisodeThresholds(acute_weeks_cutoff=8, tsk_high=34)
    assert typed(10, thresholds=stricter) == "chronic_multifactor"
    assert typed(4, tsk=35, thresholds=stricter) == "chronic_multifactor"
    assert DEFAULTS.tsk_high == 37  # the catalog's TSK-17 cut-off


def test_given_an_onset_then_weeks_are_counted_to_the_evaluation_day():
    assert symptom_weeks(date(2027, 1, 1), date(2027, 3, 26)) == 12
    # A clinic east of UTC may already be on the next day.
    assert symptom_weeks(TODAY + timedelta(days=1), TODAY) == 0


def test_given_an_onset_after_the_evaluation_day_then_refused():
    with pytest.raises(OnsetInFutureError):
        symptom_weeks(TODAY + timedelta(days=2), TODAY)
