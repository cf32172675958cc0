"""Outcome measures: worked examples hand-computed from each instrument's published scoring,
the missing-item rules at their edges, refused answers, and change against baseline in both
directions with the MCID, the relative MCID and the MDC noise guard (CLINICAL.md §1, §3.2, §5).
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from assessment.domain.measures import (
    CATALOG,
    AnswerOutOfRangeError,
    ConflictingAnswersError,
    Item,
    ItemLabelError,
    MeasureDefinition,
    MeasureThresholds,
    NotComparedToBaselineError,
    ScoreOutOfRangeError,
    ScoreSpec,
    TooManyMissingItemsError,
    UnknownItemError,
    UnknownScoreError,
    change,
    raised_flags,
    score,
    thresholds_for,
)
from kinetic_contracts.problems import RuleViolationError

NPRS, LEFS, ODI, NDI = CATALOG["nprs"], CATALOG["lefs"], CATALOG["odi"], CATALOG["ndi"]
QUICKDASH, PSFS, KOOS = CATALOG["quickdash"], CATALOG["psfs"], CATALOG["koos"]
VISA_A, VISA_P, SPADI = CATALOG["visa_a"], CATALOG["visa_p"], CATALOG["spadi"]
GROC, TSK = CATALOG["groc"], CATALOG["tsk17"]


def numbered(prefix: str, values: list[int | None]) -> dict[str, int | None]:
    return {f"{prefix}_{n:02d}": v for n, v in enumerate(values, start=1)}


def coded(prefix: str, values: list[int | None]) -> dict[str, int | None]:
    return {f"{prefix}{n}": v for n, v in enumerate(values, start=1)}


def koos(pain: list[int | None], symptoms: list[int | None], adl: list[int | None],
         sport: list[int | None], qol: list[int | None]) -> dict[str, int | None]:
    return {**coded("koos_p", pain), **coded("koos_s", symptoms), **coded("koos_a", adl),
            **coded("koos_sp", sport), **coded("koos_q", qol)}


def koos_all(value: int) -> dict[str, int | None]:
    return koos([value] * 9, [value] * 7, [value] * 17, [value] * 5, [value] * 4)


# -- the catalog ------------------------------------------------------------------------------

def test_the_catalog_holds_the_twelve_measures_of_clinical_section_1():
    assert set(CATALOG) == {"nprs", "lefs", "odi", "ndi", "quickdash", "psfs", "koos",
                            "visa_a", "visa_p", "spadi", "groc", "tsk17"}
    for code, definition in CATALOG.items():
        assert definition.code == code and definition.version == "1"
        assert definition.missing_rule


@pytest.mark.parametrize(("code", "direction", "low", "high"), [
    ("nprs", "lower_better", 0, 10), ("lefs", "higher_better", 0, 80),
    ("odi", "lower_better", 0, 100), ("ndi", "lower_better", 0, 50),
    ("quickdash", "lower_better", 0, 100), ("psfs", "higher_better", 0, 10),
    ("visa_a", "higher_better", 0, 100), ("visa_p", "higher_better", 0, 100),
    ("spadi", "lower_better", 0, 100), ("groc", "higher_better", -7, 7),
    ("tsk17", "lower_better", 17, 68)])
def test_direction_and_range_of_each_primary_score(code, direction, low, high):
    definition = CATALOG[code]
    spec = definition.score_spec(definition.primary_score)
    assert definition.direction == direction
    assert (spec.low, spec.high) == (low, high)


@pytest.mark.parametrize(("code", "score_code", "expected"), [
    ("nprs", None, MeasureThresholds(mcid=2, mdc=1.8, mcid_pct=30)),
    ("lefs", None, MeasureThresholds(mcid=9, mdc=9)),
    ("odi", None, MeasureThresholds(mcid=10, mdc=10, mcid_pct=30)),
    ("ndi", None, MeasureThresholds(mcid=7.5, mdc=10.2)),
    ("ndi", "ndi_pct", MeasureThresholds(mcid=15, mdc=20.4)),
    ("quickdash", None, MeasureThresholds(mcid=14, mdc=12.85)),
    ("psfs", None, MeasureThresholds(mcid=2, mdc=2)),
    ("psfs", "psfs_03", MeasureThresholds(mcid=3)),
    ("koos", "koos_pain", MeasureThresholds(mcid=11.3)),
    ("koos", "koos_symptoms", MeasureThresholds(mcid=12.1)),
    ("koos", "koos_adl", MeasureThresholds(mcid=10.2)),
    ("koos", "koos_sport_rec", MeasureThresholds(mcid=15.5)),
    ("koos", "koos_qol", MeasureThresholds(mcid=13.2)),
    ("visa_a", None, MeasureThresholds(mcid=14)),
    ("visa_p", None, MeasureThresholds(mcid=13)),
    ("spadi", None, MeasureThresholds(mcid=13)),
    ("groc", None, None), ("tsk17", None, None)])
def test_default_thresholds_are_clinical_section_1(code, score_code, expected):
    assert thresholds_for(CATALOG[code], score_code) == expected


def test_koos_has_no_single_score_so_thresholds_name_a_subscale():
    with pytest.raises(UnknownScoreError):
        thresholds_for(KOOS)
    with pytest.raises(UnknownScoreError):
        thresholds_for(KOOS, "koos_total")


def test_koos_subscales_have_their_published_item_counts():
    counts = {s.code: (len(s.items), s.min_answered) for s in KOOS.scores}
    assert counts == {"koos_pain": (9, 5), "koos_symptoms": (7, 4), "koos_adl": (17, 9),
                      "koos_sport_rec": (5, 3), "koos_qol": (4, 2)}


def test_tsk_reverse_scores_items_4_8_12_16():
    assert [i.id for i in TSK.items if i.reverse] == [
        "tsk17_04", "tsk17_08", "tsk17_12", "tsk17_16"]


def test_a_definition_whose_score_names_an_unknown_item_is_refused():
    with pytest.raises(ValidationError, match="unknown items"):
        MeasureDefinition(
            code="x", name="X", version="1", region="any", use="test",
            direction="lower_better", items=(Item(id="x_01", label="x", low=0, high=1),),
            scores=(ScoreSpec(code="x", label="X", unit="points", items=("x_02",),
                              rule="sum", low=0, high=1, decimals=0, min_answered=1),),
            primary_score="x", missing_rule="all")


def test_thresholds_must_be_positive():
    with pytest.raises(ValidationError):
        MeasureThresholds(mcid=0)
    with pytest.raises(ValidationError):
        MeasureThresholds(mcid=2, mcid_pct=150)


# -- worked examples ------------------------------------------------------------------------

def test_nprs_is_the_rating():
    assert score(NPRS, {"nprs_01": 6}).values == {"nprs": 6.0}


def test_lefs_is_the_sum_and_the_worked_example_baseline_is_52():
    result = score(LEFS, numbered("lefs", [3] * 12 + [2] * 8))
    assert result.values == {"lefs": 52.0}
    assert result.missing_items == ()
    assert score(LEFS, numbered("lefs", [4] * 20)).values == {"lefs": 80.0}


def test_odi_is_the_total_over_the_possible_total():
    complete = numbered("odi", [3, 2, 2, 1, 2, 2, 1, 0, 2, 1])  # 16 of 50
    assert score(ODI, complete).values == {"odi": 32.0}


def test_odi_with_one_missing_section_scores_out_of_45():
    # Fairbank & Pynsent's example: 16 / 45 × 100 = 35.56 (printed 35.5), reported 35.6.
    answers = numbered("odi", [3, 2, 2, 1, 2, 2, 1, None, 2, 1])
    result = score(ODI, answers)
    assert result.values == {"odi": 35.6}
    assert result.missing_items == ("odi_08",)


def test_odi_with_two_missing_sections_scores_out_of_40_and_three_are_too_many():
    two = numbered("odi", [3, 2, 2, 1, 2, 2, 2, None, 2, None])  # 16 of 40
    assert score(ODI, two).values == {"odi": 40.0}
    three = {**two, "odi_01": None}
    with pytest.raises(TooManyMissingItemsError) as refused:
        score(ODI, three)
    assert refused.value.extensions["missing_items"] == ["odi_01", "odi_08", "odi_10"]


def test_ndi_is_scored_on_both_scales():
    result = score(NDI, numbered("ndi", [3, 2, 2, 1, 2, 2, 1, 0, 2, 1]))  # 16
    assert result.values == {"ndi": 16.0, "ndi_pct": 32.0}
    assert NDI.primary_score == "ndi"


def test_ndi_with_a_missing_section_is_prorated_on_both_scales():
    # 16 over 9 sections: 16 × 10 / 9 = 17.78 of 50; 16 / 45 × 100 = 35.56 %.
    result = score(NDI, numbered("ndi", [3, 2, 2, 1, 2, 2, 1, None, 2, 1]))
    assert result.values == {"ndi": 17.8, "ndi_pct": 35.6}
    two = numbered("ndi", [3, 2, 2, 1, 2, 2, 2, None, 2, None])  # 16 over 8 sections
    assert score(NDI, two).values == {"ndi": 20.0, "ndi_pct": 40.0}
    with pytest.raises(TooManyMissingItemsError):
        score(NDI, {**two, "ndi_05": None})


def test_quickdash_all_threes_is_50():
    assert score(QUICKDASH, numbered("quickdash", [3] * 11)).values == {"quickdash": 50.0}
    assert score(QUICKDASH, numbered("quickdash", [1] * 11)).values == {"quickdash": 0.0}
    assert score(QUICKDASH, numbered("quickdash", [5] * 11)).values == {"quickdash": 100.0}


def test_quickdash_scores_ten_of_eleven_and_refuses_nine():
    ten = numbered("quickdash", [2, 3, 2, 3, 2, 3, 2, 3, 2, 3, None])  # 25 / 10
    assert score(QUICKDASH, ten).values == {"quickdash": 37.5}  # (2.5 − 1) × 25
    with pytest.raises(TooManyMissingItemsError):
        score(QUICKDASH, {**ten, "quickdash_01": None})


def test_quickdash_rounds_half_up_to_one_decimal():
    # sum 27 over 11: (27/11 − 1) × 25 = 36.3636… → 36.4
    answers = numbered("quickdash", [3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2])
    assert score(QUICKDASH, answers).values == {"quickdash": 36.4}


def test_psfs_worked_example_is_3_7_with_each_activity_kept():
    answers = numbered("psfs", [2, 5, 4])
    labels = {"psfs_01": "Run 30 min", "psfs_02": "Stairs down",
              "psfs_03": "Squat to lift child"}
    result = score(PSFS, answers, labels)
    assert result.values == {"psfs": 3.7, "psfs_01": 2.0, "psfs_02": 5.0, "psfs_03": 4.0}
    assert result.labels == labels
    assert result.not_scored == ()  # unused slots are not "not scored"
    assert result.missing_items == ("psfs_04", "psfs_05")


def test_psfs_needs_three_activities():
    with pytest.raises(TooManyMissingItemsError):
        score(PSFS, numbered("psfs", [2, 5]), {"psfs_01": "Run", "psfs_02": "Stairs"})


def test_a_psfs_rating_needs_the_activity_it_rated():
    with pytest.raises(ItemLabelError) as refused:
        score(PSFS, numbered("psfs", [2, 5, 4]), {"psfs_01": "Run", "psfs_02": "Stairs"})
    assert refused.value.extensions["item"] == "psfs_03"
    with pytest.raises(ItemLabelError):
        score(PSFS, numbered("psfs", [2, 5, 4]),
              {"psfs_01": "Run", "psfs_02": "Stairs", "psfs_03": "   "})


def test_fixed_items_take_no_label():
    with pytest.raises(ItemLabelError):
        score(NPRS, {"nprs_01": 4}, {"nprs_01": "running"})


def test_koos_subscale_all_zero_is_100_and_all_four_is_0():
    assert score(KOOS, koos_all(0)).values == {
        "koos_pain": 100.0, "koos_symptoms": 100.0, "koos_adl": 100.0,
        "koos_sport_rec": 100.0, "koos_qol": 100.0}
    assert set(score(KOOS, koos_all(4)).values.values()) == {0.0}


def test_koos_subscales_are_scored_separately():
    result = score(KOOS, koos(
        pain=[1, 2, 2, 2, 2, 2, 2, 2, 2],  # mean 17/9 → 100 − 47.22 = 52.8
        symptoms=[1] * 7,  # 75.0
        adl=[0] * 17,  # 100.0
        sport=[4, 3, 4, 3, 4],  # mean 3.6 → 10.0
        qol=[2, 2, 3, 3]))  # mean 2.5 → 37.5
    assert result.values == {"koos_pain": 52.8, "koos_symptoms": 75.0, "koos_adl": 100.0,
                             "koos_sport_rec": 10.0, "koos_qol": 37.5}


def test_koos_rounds_half_up():
    # Pain, 8 of 9 answered, sum 6: 100 − 6/8 × 25 = 81.25 → 81.3 (banker's rounding: 81.2).
    answers = koos([1, 1, 1, 1, 1, 1, 0, 0, None], [0] * 7, [0] * 17, [0] * 5, [0] * 4)
    result = score(KOOS, answers)
    assert result.values["koos_pain"] == 81.3
    assert result.missing_items == ("koos_p9",)


def test_a_koos_subscale_needs_half_its_items():
    # Symptoms: 4 of 7 answered is enough (mean 1.5 → 62.5); 3 of 7 is not, and only that
    # subscale goes unscored.
    four = koos([0] * 9, [2, 2, 1, 1, None, None, None], [0] * 17, [0] * 5, [0] * 4)
    assert score(KOOS, four).values["koos_symptoms"] == 62.5
    three = {**four, "koos_s4": None}
    result = score(KOOS, three)
    assert "koos_symptoms" not in result.values
    assert result.not_scored == ("koos_symptoms",)
    assert set(result.values) == {"koos_pain", "koos_adl", "koos_sport_rec", "koos_qol"}


def test_koos_sport_may_be_left_out_but_not_everything():
    no_sport = koos([1] * 9, [1] * 7, [1] * 17, [None] * 5, [1] * 4)
    assert score(KOOS, no_sport).not_scored == ("koos_sport_rec",)
    with pytest.raises(TooManyMissingItemsError):
        score(KOOS, koos([None] * 9, [None] * 7, [None] * 17, [None] * 5, [1, None, None, None]))


def test_visa_a_adds_questions_1_to_7_and_the_one_part_of_question_8():
    answers = {**numbered("visa_a", [5, 6, 7, 4, 3, 2, 4]), "visa_a_08b": 10}
    result = score(VISA_A, answers)
    assert result.values == {"visa_a": 41.0}  # 27 + 4 + 10
    assert result.missing_items == ()
    best = {**numbered("visa_a", [10] * 6 + [10]), "visa_a_08a": 30}
    assert score(VISA_A, best).values == {"visa_a": 100.0}


def test_visa_p_is_scored_the_same_way():
    answers = {**numbered("visa_p", [8, 7, 9, 6, 5, 4, 7]), "visa_p_08c": 5}
    assert score(VISA_P, answers).values == {"visa_p": 51.0}  # 39 + 7 + 5


def test_visa_question_8_takes_exactly_one_part():
    answers = {**numbered("visa_a", [5, 6, 7, 4, 3, 2, 4]), "visa_a_08a": 7, "visa_a_08b": 4}
    with pytest.raises(ConflictingAnswersError):
        score(VISA_A, answers)
    with pytest.raises(TooManyMissingItemsError) as refused:
        score(VISA_A, numbered("visa_a", [5, 6, 7, 4, 3, 2, 4]))
    assert refused.value.extensions["missing_items"] == ["visa_a_08"]


def test_visa_needs_every_question():
    answers = {**numbered("visa_a", [5, 6, 7, 4, 3, None, 4]), "visa_a_08b": 10}
    with pytest.raises(TooManyMissingItemsError):
        score(VISA_A, answers)


@pytest.mark.parametrize(("item", "answer"), [
    ("visa_a_07", 5), ("visa_a_08a", 10), ("visa_a_08b", 7), ("visa_a_08c", 4),
    ("visa_a_01", 11)])
def test_visa_fixed_point_questions_take_only_their_points(item, answer):
    answers = {**numbered("visa_a", [5, 6, 7, 4, 3, 2, 4]), "visa_a_08b": 10, item: answer}
    if item.startswith("visa_a_08") and item != "visa_a_08b":
        del answers["visa_a_08b"]
    with pytest.raises(AnswerOutOfRangeError) as refused:
        score(VISA_A, answers)
    assert refused.value.extensions["item"] == item


def test_spadi_subscales_and_total():
    answers = {**coded("spadi_p", [5] * 5), **coded("spadi_d", [2] * 8)}
    # pain 25/50, disability 16/80, total 41/130 = 31.54
    assert score(SPADI, answers).values == {
        "spadi_pain": 50.0, "spadi_disability": 20.0, "spadi": 31.5}


def test_spadi_allows_two_missing_per_subscale_and_scores_what_was_answered():
    answers = {**coded("spadi_p", [5, 5, 5, None, None]),
               **coded("spadi_d", [2, 2, 2, 2, 2, 2, None, None])}
    # pain 15/30, disability 12/60, total 27/90
    assert score(SPADI, answers).values == {
        "spadi_pain": 50.0, "spadi_disability": 20.0, "spadi": 30.0}


def test_spadi_total_is_refused_when_a_subscale_misses_three():
    answers = {**coded("spadi_p", [5, 5, None, None, None]), **coded("spadi_d", [2] * 8)}
    with pytest.raises(TooManyMissingItemsError) as refused:
        score(SPADI, answers)
    assert refused.value.extensions["score"] == "spadi"


def test_tsk_reverse_scores_and_totals_17_to_68():
    # All "1": 13 items × 1 + 4 reversed items × 4 = 29.
    assert score(TSK, numbered("tsk17", [1] * 17)).values == {"tsk17": 29.0}
    # All "4": 13 × 4 + 4 × 1 = 56.
    assert score(TSK, numbered("tsk17", [4] * 17)).values == {"tsk17": 56.0}
    lowest = [1, 1, 1, 4, 1, 1, 1, 4, 1, 1, 1, 4, 1, 1, 1, 4, 1]
    highest = [5 - v for v in lowest]
    assert score(TSK, numbered("tsk17", lowest)).values == {"tsk17": 17.0}
    assert score(TSK, numbered("tsk17", highest)).values == {"tsk17": 68.0}


def test_tsk_above_37_flags_high_kinesiophobia():
    # All "2": 13 × 2 + 4 × 3 = 38.
    high = score(TSK, numbered("tsk17", [2] * 17))
    assert high.values == {"tsk17": 38.0}
    assert raised_flags(TSK, high) == ("high_kinesiophobia",)
    assert raised_flags(TSK, high, {"high_kinesiophobia": 40}) == ()
    # The worked example's 31: all "1" (29) with two items at 2.
    example = score(TSK, numbered("tsk17", [2, 2] + [1] * 15))
    assert example.values == {"tsk17": 31.0}
    assert raised_flags(TSK, example) == ()
    with pytest.raises(ValueError):
        raised_flags(TSK, high, {"tsk_high": 40})


def test_tsk_needs_all_17_items():
    with pytest.raises(TooManyMissingItemsError):
        score(TSK, numbered("tsk17", [2] * 16 + [None]))


def test_groc_flags_important_change_from_plus_3():
    assert raised_flags(GROC, score(GROC, {"groc_01": 2})) == ()
    assert raised_flags(GROC, score(GROC, {"groc_01": 3})) == ("important_improvement",)
    assert raised_flags(GROC, score(GROC, {"groc_01": 5})) == (
        "important_improvement", "moderate_improvement")
    assert score(GROC, {"groc_01": -4}).values == {"groc": -4.0}


# -- refused answers --------------------------------------------------------------------------

@pytest.mark.parametrize(("definition", "answers"), [
    (NPRS, {}), (NPRS, {"nprs_01": None}), (GROC, {}),
    (LEFS, numbered("lefs", [3] * 19 + [None]))])
def test_required_items_cannot_be_missing(definition, answers):
    with pytest.raises(TooManyMissingItemsError):
        score(definition, answers)


@pytest.mark.parametrize(("definition", "item", "answer"), [
    (NPRS, "nprs_01", 11), (NPRS, "nprs_01", -1), (LEFS, "lefs_05", 5),
    (ODI, "odi_03", 6), (QUICKDASH, "quickdash_02", 0), (KOOS, "koos_p3", 5),
    (TSK, "tsk17_04", 0), (GROC, "groc_01", 8), (SPADI, "spadi_d8", 11),
    (NPRS, "nprs_01", True), (NPRS, "nprs_01", 3.0)])
def test_an_answer_outside_the_item_range_is_refused_naming_the_item(definition, item, answer):
    with pytest.raises(AnswerOutOfRangeError) as refused:
        score(definition, {item: answer})
    assert refused.value.extensions["item"] == item
    assert item in refused.value.detail
    assert isinstance(refused.value, RuleViolationError)  # 422


@pytest.mark.parametrize(("definition", "item"), [
    (LEFS, "lefs_21"), (KOOS, "koos_p10"), (NPRS, "pain"), (VISA_A, "visa_a_08")])
def test_an_unknown_item_is_refused_naming_it(definition, item):
    with pytest.raises(UnknownItemError) as refused:
        score(definition, {item: 1})
    assert refused.value.extensions["item"] == item
    with pytest.raises(UnknownItemError):
        score(PSFS, numbered("psfs", [2, 5, 4]), {"psfs_06": "Swim"})


# -- change against baseline ------------------------------------------------------------------

def test_lefs_worked_example_target_is_baseline_plus_mcid():
    defaults = thresholds_for(LEFS)
    passed = change(LEFS, defaults, 52, 61)
    assert (passed.raw, passed.improvement, passed.passed_mcid) == (9.0, 9.0, True)
    assert passed.possibly_noise is False and passed.threshold == 9.0
    short = change(LEFS, defaults, 52, 60)
    assert short.passed_mcid is False
    assert short.possibly_noise is True  # 8 < MDC 9
    assert short.deteriorated is False


def test_lower_is_better_reads_a_fall_as_an_improvement():
    nprs = change(NPRS, thresholds_for(NPRS), 6, 4)
    assert (nprs.raw, nprs.improvement, nprs.passed_mcid) == (-2.0, 2.0, True)
    assert change(NPRS, thresholds_for(NPRS), 6, 5).passed_mcid is False
    odi = change(ODI, thresholds_for(ODI), 40, 30)
    assert (odi.improvement, odi.passed_mcid, odi.possibly_noise) == (10.0, True, False)
    assert change(ODI, thresholds_for(ODI), 40, 31).passed_mcid is False


def test_deterioration_is_a_change_of_the_mcid_the_wrong_way():
    worse = change(NPRS, thresholds_for(NPRS), 4, 6)
    assert (worse.improvement, worse.deteriorated, worse.passed_mcid) == (-2.0, True, False)
    assert change(NPRS, thresholds_for(NPRS), 4, 5).deteriorated is False
    assert change(LEFS, thresholds_for(LEFS), 52, 43).deteriorated is True
    assert change(LEFS, thresholds_for(LEFS), 52, 44).deteriorated is False


def test_psfs_worked_example_target_is_5_7():
    defaults = thresholds_for(PSFS)
    assert change(PSFS, defaults, 3.7, 5.7, score="psfs").passed_mcid is True
    assert change(PSFS, defaults, 3.7, 5.7, score="psfs").improvement == 2.0
    assert change(PSFS, defaults, 3.7, 5.6, score="psfs").passed_mcid is False


def test_a_single_psfs_activity_needs_3():
    item = thresholds_for(PSFS, "psfs_01")
    assert change(PSFS, item, 2, 5, score="psfs_01").passed_mcid is True
    assert change(PSFS, item, 2, 4, score="psfs_01").passed_mcid is False


def test_ndi_noise_guard_lifts_the_bar_from_the_mcid_to_the_mdc():
    defaults = thresholds_for(NDI, "ndi")
    beyond_mcid = change(NDI, defaults, 20, 12, score="ndi")  # 8 ≥ 7.5 but < 10.2
    assert beyond_mcid.passed_mcid is False
    assert beyond_mcid.possibly_noise is True
    assert beyond_mcid.threshold == 10.2
    assert change(NDI, defaults, 20, 9.5, score="ndi").passed_mcid is True
    assert change(NDI, defaults, 12, 20, score="ndi").deteriorated is False  # 8 < 10.2
    assert change(NDI, defaults, 9, 20, score="ndi").deteriorated is True


def test_ndi_percent_scale_uses_its_own_thresholds():
    pct = thresholds_for(NDI, "ndi_pct")
    assert change(NDI, pct, 40, 24, score="ndi_pct").passed_mcid is False  # 16 < 20.4
    assert change(NDI, pct, 40, 19, score="ndi_pct").passed_mcid is True
    with pytest.raises(ScoreOutOfRangeError):
        change(NDI, thresholds_for(NDI), 70, 50, score="ndi")  # a % value on the 0–50 scale


def test_relative_mcid_passes_where_no_mdc_stands_in_the_way():
    # NPRS 3 → 2 is 33% better but 1 point: with the default MDC (1.8) that is noise…
    defaults = change(NPRS, thresholds_for(NPRS), 3, 2)
    assert defaults.relative_pct == 33.3
    assert (defaults.passed_mcid, defaults.possibly_noise) == (False, True)
    # …with an organization's thresholds that carry no MDC, 30% of 3 (0.9) is the bar.
    own = MeasureThresholds(mcid=2, mcid_pct=30)
    assert change(NPRS, own, 3, 2).passed_mcid is True
    assert change(NPRS, own, 3, 2).threshold == 0.9
    # At a high baseline the absolute 2 points is the smaller bar.
    assert change(NPRS, own, 10, 8).threshold == 2.0


def test_odi_relative_mcid_below_the_mdc_is_lifted_to_it():
    low_baseline = change(ODI, thresholds_for(ODI), 20, 14)  # 30% of 20 = 6 < MDC 10
    assert (low_baseline.passed_mcid, low_baseline.possibly_noise) == (False, True)
    assert low_baseline.threshold == 10.0
    assert change(ODI, MeasureThresholds(mcid=10, mcid_pct=30), 20, 14).passed_mcid is True


def test_an_organization_may_raise_the_bar():
    stricter = MeasureThresholds(mcid=12, mdc=9)
    assert change(LEFS, stricter, 52, 61).passed_mcid is False
    assert change(LEFS, stricter, 52, 64).passed_mcid is True


def test_koos_subscales_change_against_their_own_mcid():
    pain = thresholds_for(KOOS, "koos_pain")
    assert change(KOOS, pain, 50, 61.3, score="koos_pain").passed_mcid is True
    assert change(KOOS, pain, 50, 61.2, score="koos_pain").passed_mcid is False
    # No MDC is set for KOOS, so nothing is flagged as noise.
    assert change(KOOS, pain, 50, 52, score="koos_pain").possibly_noise is False
    with pytest.raises(UnknownScoreError):
        change(KOOS, pain, 50, 60, score="koos_total")


def test_without_thresholds_the_change_is_reported_but_not_judged():
    moved = change(TSK, thresholds_for(TSK), 44, 36)
    assert moved.improvement == 8.0
    assert (moved.mcid, moved.passed_mcid, moved.deteriorated) == (None, False, False)


def test_groc_is_not_compared_with_a_baseline():
    with pytest.raises(NotComparedToBaselineError):
        change(GROC, None, 0, 3)


@pytest.mark.parametrize(("baseline", "current"), [(-1, 50), (52, 81), (float("nan"), 50)])
def test_scores_outside_the_range_are_refused(baseline, current):
    with pytest.raises(ScoreOutOfRangeError):
        change(LEFS, thresholds_for(LEFS), baseline, current)
