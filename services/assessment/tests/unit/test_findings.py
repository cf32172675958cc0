"""Objective findings: the CLINICAL.md §5 worked example, each index's arithmetic, the
DEFAULT thresholds, and refusal of values no body produces. Pure: no I/O."""

from __future__ import annotations

import math

import pytest

from assessment.domain.findings import (
    DEFAULT_THRESHOLDS,
    HEEL_RAISE_NOISE_REPS,
    KGF_TO_N,
    DuplicateFindingError,
    FindingThresholds,
    HeelRaise,
    HopBattery,
    ImplausibleFindingError,
    InvalidFindingError,
    Mobility,
    MovementTest,
    ObjectiveFindings,
    SidePair,
    SingleLegSquat,
    SquatSide,
    StrengthTest,
    UndefinedSymmetryIndexError,
    YBalance,
    bilaterally_at_least,
    bilaterally_good,
    compute,
    display_percent,
    heel_raise_change_is_noise,
    heel_raise_passes,
    hop_battery_passes,
    limb_symmetry_index,
    strength_passes,
    y_balance_passes,
)
from kinetic_contracts.problems import RuleViolationError

GOOD = SquatSide(overall="good", trunk="good", pelvis="good", hip="good", knee="good")
# §5: knee medial to the 2nd toe, contralateral pelvic drop.
POOR_VALGUS = SquatSide(overall="poor", trunk="fair", pelvis="poor", hip="poor", knee="poor")


def strength(muscle_group: str, right: tuple[float, ...], left: tuple[float, ...],
             **overrides) -> StrengthTest:
    values = dict(muscle_group=muscle_group, unit="kgf", involved_side="right",
                  trials_right=right, trials_left=left)
    return StrengthTest(**(values | overrides))


def worked_example() -> ObjectiveFindings:
    """CLINICAL.md §5: 29 F runner, right patellofemoral pain."""
    return ObjectiveFindings(
        strength=[
            strength("hip_abduction", right=(13.6, 14.2, 13.9), left=(17.5, 18.0, 17.8)),
            strength("hip_external_rotation", right=(8.7, 9.0, 8.8), left=(11.0, 10.6, 10.9)),
            strength("quadriceps", right=(35.9, 36.8, 36.1), left=(40.0, 39.2, 39.5)),
        ],
        movement=[SingleLegSquat(left=GOOD, right=POOR_VALGUS)],
        y_balance=[YBalance(anterior_cm=SidePair(left=63, right=58))],
    )


def index(indices, finding_id: str, name: str):
    [found] = [i for i in indices if i.finding_id == finding_id and i.index == name]
    return found


# -- the worked example --------------------------------------------------------------------

def test_worked_example_hip_abduction_lsi_is_79_percent_and_fails():
    indices = compute(worked_example(), DEFAULT_THRESHOLDS)
    lsi = index(indices, "strength:hip_abduction", "lsi_pct")
    assert (lsi.value, lsi.unit, lsi.passed) == (78.9, "%", False)
    assert display_percent(lsi.value) == 79


def test_worked_example_hip_er_82_and_quadriceps_92_percent():
    indices = compute(worked_example())
    er = index(indices, "strength:hip_external_rotation", "lsi_pct")
    quads = index(indices, "strength:quadriceps", "lsi_pct")
    assert (display_percent(er.value), er.passed) == (82, False)
    assert (display_percent(quads.value), quads.passed) == (92, True)


def test_worked_example_best_of_three_is_the_strongest_trial():
    hip = worked_example().strength[0]
    assert (hip.best("right"), hip.best("left")) == (14.2, 18.0)
    indices = compute(worked_example())
    assert index(indices, "strength:hip_abduction", "best_right").value == 14.2
    assert index(indices, "strength:hip_abduction", "best_left").unit == "kgf"


def test_worked_example_right_sls_poor_is_not_bilaterally_good():
    [sls] = worked_example().movement
    assert sls.finding_id == "movement:sls"
    assert sls.rating("right") == "poor" and sls.rating("left") == "good"
    assert not bilaterally_good(sls)
    indices = compute(worked_example())
    assert index(indices, "movement:sls", "bilateral_rating").passed is False
    assert index(indices, "movement:sls", "left_rating").passed is True
    assert index(indices, "movement:sls", "right_rating").value == 0


def test_worked_example_y_balance_5_cm_asymmetry_fails_the_4_cm_criterion():
    [ybal] = worked_example().y_balance
    assert ybal.anterior_asymmetry_cm == 5.0
    assert not y_balance_passes(ybal, DEFAULT_THRESHOLDS)
    asym = index(compute(worked_example()), "y_balance", "anterior_asymmetry_cm")
    assert (asym.value, asym.unit, asym.passed) == (5.0, "cm", False)


def test_worked_example_every_finding_has_an_index_under_its_id():
    ids = {i.finding_id for i in compute(worked_example())}
    assert ids == {"strength:hip_abduction", "strength:hip_external_rotation",
                   "strength:quadriceps", "movement:sls", "y_balance"}


# -- movement quality ----------------------------------------------------------------------

def test_sls_side_is_as_good_as_its_worst_item():
    one_fair = GOOD.model_copy(update={"knee": "fair"})
    sls = SingleLegSquat(left=GOOD, right=one_fair)
    assert sls.rating("right") == "fair"
    assert not bilaterally_good(sls)
    assert bilaterally_at_least(sls, "fair")
    assert bilaterally_good(SingleLegSquat(left=GOOD, right=GOOD))


def test_one_side_not_rated_is_not_bilaterally_good():
    assert not bilaterally_good(SingleLegSquat(right=GOOD))
    step_down = MovementTest(test="step_down_20cm", left="good")
    assert step_down.finding_id == "movement:step_down_20cm"
    assert not bilaterally_good(step_down)
    assert bilaterally_good(MovementTest(test="step_down_20cm", left="good", right="good"))


def test_movement_test_with_no_side_rated_is_refused():
    with pytest.raises(InvalidFindingError) as refused:
        MovementTest(test="step_down_20cm")
    assert refused.value.extensions["field"] == "left"


# -- strength ------------------------------------------------------------------------------

def test_kgf_converts_to_newtons_and_torque_per_kg():
    test = strength("hip_abduction", right=(10.0,), left=(12.0,), lever_arm_m=0.3)
    assert KGF_TO_N == 9.80665
    assert test.best_newtons("right") == pytest.approx(98.0665)
    assert test.torque_nm("right") == pytest.approx(29.41995)
    assert test.torque_nm_per_kg("right", 60) == pytest.approx(0.4903325)
    findings = ObjectiveFindings(strength=[test], body_mass_kg=60)
    indices = compute(findings)
    torque = index(indices, "strength:hip_abduction", "torque_right_nm")
    per_kg = index(indices, "strength:hip_abduction", "torque_right_nm_per_kg")
    assert (torque.value, torque.unit) == (29.4, "N·m")
    assert (per_kg.value, per_kg.unit) == (0.49, "N·m/kg")


def test_newton_test_is_not_converted_and_no_lever_arm_means_no_torque():
    test = strength("quadriceps", right=(300.0, 310.5), left=(320.0,), unit="N")
    assert test.best_newtons("right") == 310.5
    assert test.torque_nm("right") is None
    names = {i.index for i in compute(ObjectiveFindings(strength=[test], body_mass_kg=70))}
    assert names == {"best_left", "best_right", "lsi_pct"}


def test_torque_per_kg_needs_the_body_mass():
    test = strength("hip_abduction", right=(10.0,), left=(12.0,), lever_arm_m=0.3)
    assert test.torque_nm_per_kg("right", None) is None
    names = {i.index for i in compute(ObjectiveFindings(strength=[test]))}
    assert "torque_right_nm" in names and "torque_right_nm_per_kg" not in names


def test_lsi_uses_the_involved_side_as_numerator():
    right = strength("hip_abduction", right=(14.2,), left=(18.0,))
    left = right.model_copy(update={"involved_side": "left"})
    assert right.lsi() == pytest.approx(78.888, abs=1e-3)
    assert left.lsi() == pytest.approx(126.76, abs=1e-2)  # the involved side is stronger


def test_lsi_exactly_at_the_threshold_passes():
    # 16.2 / 18.0 is exactly 90 %; floats alone make it 89.99999999999999 or so.
    test = strength("hip_abduction", right=(16.2,), left=(18.0,))
    assert limb_symmetry_index(16.2, 18.0) == 90.0
    assert strength_passes(test)


def test_organization_threshold_overrides_the_default():
    quads = worked_example().strength[2]  # LSI 92 %
    assert strength_passes(quads)
    assert not strength_passes(quads, FindingThresholds(lsi_pass=95))
    assert DEFAULT_THRESHOLDS == FindingThresholds(lsi_pass=90, ybal_ant_cm=4, heel_raise_min=25)


def test_uninvolved_side_zero_is_a_clear_error_not_a_division_by_zero():
    test = strength("hip_abduction", right=(5.0,), left=(0.0,))
    with pytest.raises(UndefinedSymmetryIndexError) as refused:
        compute(ObjectiveFindings(strength=[test]))
    assert isinstance(refused.value, RuleViolationError)
    assert refused.value.extensions["field"] == "trials_left"
    assert "0" in refused.value.detail and "strength:hip_abduction" in refused.value.detail


def test_involved_side_zero_is_an_lsi_of_zero():
    assert strength("hip_abduction", right=(0.0,), left=(18.0,)).lsi() == 0.0


# -- hop battery ---------------------------------------------------------------------------

def battery(**hops) -> HopBattery:
    values = dict(involved_side="right", single_hop_cm=SidePair(left=150, right=140),
                  triple_hop_cm=SidePair(left=480, right=450),
                  crossover_hop_cm=SidePair(left=420, right=400))
    return HopBattery(**(values | hops))


def test_timed_hop_lsi_is_inverted():
    # Slower on the involved side: 2.2 s / 2.5 s = 88 %, not 2.5 / 2.2 = 114 %.
    hops = battery(timed_6m_hop_s=SidePair(left=2.2, right=2.5))
    assert hops.lsi("timed_6m_hop") == pytest.approx(88.0)
    assert hops.lsi("single_hop") == pytest.approx(93.333, abs=1e-3)
    timed = index(compute(ObjectiveFindings(hop_battery=[hops])), "hop_battery",
                  "timed_6m_hop_lsi_pct")
    assert (timed.value, timed.passed) == (88.0, False)


def test_hop_battery_passes_only_when_every_hop_passes():
    assert hop_battery_passes(battery())
    assert hop_battery_passes(battery(timed_6m_hop_s=SidePair(left=2.2, right=2.3)))
    assert not hop_battery_passes(battery(timed_6m_hop_s=SidePair(left=2.2, right=2.5)))
    assert not hop_battery_passes(battery(triple_hop_cm=SidePair(left=480, right=420)))


def test_hop_battery_missing_a_distance_hop_does_not_pass():
    partial = battery(crossover_hop_cm=None)
    assert partial.recorded() == ["single_hop", "triple_hop"]
    assert not hop_battery_passes(partial)
    whole = index(compute(ObjectiveFindings(hop_battery=[partial])), "hop_battery",
                  "battery_lsi_pct")
    assert (whole.value, whole.passed) == (93.3, False)


def test_hop_battery_index_is_the_weakest_hop():
    hops = battery(triple_hop_cm=SidePair(left=480, right=420))
    whole = index(compute(ObjectiveFindings(hop_battery=[hops])), "hop_battery",
                  "battery_lsi_pct")
    assert (whole.value, whole.passed) == (87.5, False)


# -- Y-balance -----------------------------------------------------------------------------

def test_y_balance_composite_per_side():
    test = YBalance(anterior_cm=SidePair(left=63, right=60),
                    posteromedial_cm=SidePair(left=100, right=95),
                    posterolateral_cm=SidePair(left=95, right=92),
                    limb_length_cm=SidePair(left=86, right=86))
    assert test.composite_pct("left") == pytest.approx(100.0)  # 258 / 258
    assert test.composite_pct("right") == pytest.approx(247 / 258 * 100)
    assert y_balance_passes(test)  # 3 cm < 4 cm
    indices = compute(ObjectiveFindings(y_balance=[test]))
    right = index(indices, "y_balance", "composite_right_pct")
    assert (right.value, right.passed) == (95.7, None)


def test_y_balance_composite_waits_for_all_reaches_and_limb_length():
    test = YBalance(anterior_cm=SidePair(left=63, right=58),
                    posteromedial_cm=SidePair(left=100, right=95))
    assert test.composite_pct("left") is None
    assert {i.index for i in compute(ObjectiveFindings(y_balance=[test]))} == {
        "anterior_asymmetry_cm"}


def test_y_balance_asymmetry_at_4_cm_fails_below_passes():
    at_4 = YBalance(anterior_cm=SidePair(left=62.3, right=58.3))  # "<4 cm" is strict
    assert at_4.anterior_asymmetry_cm == 4.0
    assert not y_balance_passes(at_4)
    assert y_balance_passes(YBalance(anterior_cm=SidePair(left=62.0, right=58.5)))


# -- heel raise ----------------------------------------------------------------------------

def test_heel_raise_passes_with_symmetry_and_enough_reps():
    assert heel_raise_passes(HeelRaise(involved_side="left", left=27, right=28))


def test_heel_raise_symmetric_but_below_25_reps_fails():
    weak = HeelRaise(involved_side="left", left=24, right=26)
    assert weak.lsi() == pytest.approx(92.3, abs=0.05)
    assert not heel_raise_passes(weak)
    indices = compute(ObjectiveFindings(heel_raise=[weak]))
    assert index(indices, "heel_raise", "lsi_pct").passed is True
    reps = index(indices, "heel_raise", "involved_reps")
    assert (reps.value, reps.unit, reps.passed) == (24, "reps", False)


def test_heel_raise_enough_reps_but_asymmetric_fails():
    assert not heel_raise_passes(HeelRaise(involved_side="right", left=31, right=27))


def test_heel_raise_change_below_seven_reps_is_noise():
    assert HEEL_RAISE_NOISE_REPS == 7
    assert heel_raise_change_is_noise(18, 24)
    assert not heel_raise_change_is_noise(18, 25)
    assert heel_raise_change_is_noise(25, 19)


# -- mobility ------------------------------------------------------------------------------

def test_mobility_side_difference():
    dorsiflexion = Mobility(measure="ankle_dorsiflexion", method="knee_to_wall", unit="cm",
                            left=11.5, right=8.0)
    assert dorsiflexion.finding_id == "mobility:ankle_dorsiflexion"
    assert (dorsiflexion.difference, dorsiflexion.right_minus_left) == (3.5, -3.5)
    [diff] = compute(ObjectiveFindings(mobility=[dorsiflexion]))
    assert (diff.index, diff.value, diff.unit, diff.passed) == ("side_difference", 3.5, "cm",
                                                                None)


# -- ids -----------------------------------------------------------------------------------

def test_finding_ids_are_derived_or_supplied():
    assert strength("hip_abduction", (1.0,), (1.0,)).finding_id == "strength:hip_abduction"
    assert battery().finding_id == "hop_battery"
    assert HeelRaise(involved_side="left", left=1, right=1).finding_id == "heel_raise"
    own = strength("hip_external_rotation", (1.0,), (1.0,),
                   finding_id="strength:hip_external_rotation:prone")
    assert own.finding_id == "strength:hip_external_rotation:prone"


def test_the_derived_id_survives_storage():
    stored = ObjectiveFindings.model_validate_json(worked_example().model_dump_json())
    assert stored == worked_example()
    assert compute(stored) == compute(worked_example())


def test_findings_read_from_json_dispatch_movement_by_kind():
    findings = ObjectiveFindings.model_validate({"movement": [
        {"kind": "single_leg_squat", "right": POOR_VALGUS.model_dump()},
        {"kind": "movement_test", "test": "step_down_20cm", "left": "fair", "right": "poor"},
    ]})
    assert [f.finding_id for f in findings.movement] == ["movement:sls",
                                                         "movement:step_down_20cm"]


def test_two_findings_with_one_id_are_refused():
    with pytest.raises(DuplicateFindingError) as refused:
        ObjectiveFindings(strength=[strength("quadriceps", (1.0,), (1.0,)),
                                    strength("quadriceps", (2.0,), (2.0,))])
    assert refused.value.extensions["finding_id"] == "strength:quadriceps"


def test_a_name_that_is_not_a_code_is_refused():
    with pytest.raises(InvalidFindingError) as refused:
        strength("Hip abduction", (1.0,), (1.0,))
    assert refused.value.extensions["field"] == "muscle_group"
    with pytest.raises(InvalidFindingError) as refused:
        strength("hip_abduction", (1.0,), (1.0,), finding_id="Strength/Hip")
    assert refused.value.extensions["field"] == "finding_id"


# -- values no body produces ----------------------------------------------------------------

@pytest.mark.parametrize(("build", "field"), [
    (lambda: battery(single_hop_cm=SidePair(left=150, right=1200)), "single_hop_cm.right"),
    (lambda: battery(triple_hop_cm=SidePair(left=-1, right=450)), "triple_hop_cm.left"),
    (lambda: battery(timed_6m_hop_s=SidePair(left=2.2, right=0)), "timed_6m_hop_s.right"),
    (lambda: battery(timed_6m_hop_s=SidePair(left=-2, right=2)), "timed_6m_hop_s.left"),
    (lambda: strength("quadriceps", (2500.0,), (300.0,), unit="N"), "trials_right[0]"),
    (lambda: strength("quadriceps", (30.0, 250.0), (30.0,)), "trials_right[1]"),  # kgf
    (lambda: strength("quadriceps", (30.0,), (-1.0,)), "trials_left[0]"),
    (lambda: strength("quadriceps", (30.0,), (math.nan,)), "trials_left[0]"),
    (lambda: strength("quadriceps", (30.0,), (30.0,), lever_arm_m=0), "lever_arm_m"),
    (lambda: strength("quadriceps", (30.0,), (30.0,), lever_arm_m=3), "lever_arm_m"),
    (lambda: Mobility(measure="hip_internal_rotation", unit="deg", left=-5, right=30), "left"),
    (lambda: Mobility(measure="hip_internal_rotation", unit="deg", left=35, right=200), "right"),
    (lambda: Mobility(measure="ankle_dorsiflexion", unit="cm", left=9, right=150), "right"),
    (lambda: YBalance(anterior_cm=SidePair(left=-3, right=58)), "anterior_cm.left"),
    (lambda: YBalance(anterior_cm=SidePair(left=63, right=58),
                      limb_length_cm=SidePair(left=0, right=86)), "limb_length_cm.left"),
    (lambda: HeelRaise(involved_side="left", left=-1, right=25), "left"),
    (lambda: HeelRaise(involved_side="left", left=20, right=500), "right"),
    (lambda: ObjectiveFindings(body_mass_kg=0), "body_mass_kg"),
])
def test_implausible_values_are_refused_naming_the_field(build, field):
    with pytest.raises(ImplausibleFindingError) as refused:
        build()
    assert isinstance(refused.value, RuleViolationError)  # a 422 problem at the HTTP edge
    assert refused.value.extensions["field"] == field
    assert field in refused.value.detail


def test_implausible_value_inside_the_findings_is_refused_when_read_from_json():
    with pytest.raises(ImplausibleFindingError) as refused:
        ObjectiveFindings.model_validate({"hop_battery": [
            {"involved_side": "right", "single_hop_cm": {"left": 150, "right": 1001}}]})
    assert refused.value.extensions == {
        "finding_id": "hop_battery", "field": "single_hop_cm.right", "value": 1001,
        "minimum": 0, "maximum": 1000.0, "unit": "cm"}


def test_kgf_ceiling_matches_2000_newtons():
    strength("quadriceps", (203.9,), (30.0,))  # 1999.6 N: strong, but possible
    with pytest.raises(ImplausibleFindingError):
        strength("quadriceps", (204.0,), (30.0,))


@pytest.mark.parametrize("trials", [(), (10.0, 11.0, 12.0, 13.0)])
def test_best_of_three_takes_one_to_three_trials(trials):
    with pytest.raises(InvalidFindingError) as refused:
        strength("quadriceps", trials, (30.0,))
    assert refused.value.extensions["field"] == "trials_right"


def test_a_hop_battery_needs_a_hop():
    with pytest.raises(InvalidFindingError):
        HopBattery(involved_side="left")
