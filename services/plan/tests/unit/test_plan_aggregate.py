"""The plan aggregate (``decide``/``evolve``) on the §5 runner: drafted from the evaluation,
activated only with an end point, sessions logged with the progression they propose, a
stall that holds the plan until the clinician answers it, stages advanced only on passing
criteria, and a discharge only on the criteria or an override that says who, why and when."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from kinetic_contracts.assessment.v1.events import FindingIndex, MeasureScore
from kinetic_contracts.plan.v1 import events as public
from plan.domain import plan as p
from plan.domain.criteria import BaselineRequiredError, Criterion
from plan.domain.exercises import Library, UnknownExerciseError
from plan.domain.discharge import DischargeOverride, DischargeRefusedError, PlanNotActivatableError
from plan.domain.progression import ManualTherapyNotLinkedError
from plan.domain.rules import DEFAULT_RULES
from plan.domain.scales import ScoreOutOfRangeError, ScorePrecisionError, UnknownScoreError
from plan.domain.stages import ExitCriteriaUnmetError
from services.plan.tests.unit.test_drafting import TODAY, draft, evaluation

NOW = datetime(2025, 5, 5, 12, tzinfo=UTC)
THERAPIST = uuid4()


class Episode:
    """A plan's stream in memory: decide, then evolve with what was decided."""

    def __init__(self) -> None:
        self.plan_id = uuid4()
        self.state: p.PlanState = None
        self.events: list[object] = []

    def do(self, command: p.PlanCommand) -> list[object]:
        new = p.decide(command, self.state)
        for event in new:
            self.state = p.evolve(self.state, event)
        self.events += new
        return new

    @property
    def plan(self) -> p.Plan:
        assert self.state is not None
        return self.state

    def draft(self, **changes: object) -> Episode:
        done = evaluation()
        content = draft(**changes)
        self.do(p.DraftPlan(plan_id=self.plan_id, now=NOW, episode_id=done.episode_id,
                            patient_id=done.patient_id, location_id=done.location_id,
                            evaluation_id=done.evaluation_id, content=content,
                            rules=DEFAULT_RULES))
        return self

    def activate(self) -> Episode:
        self.do(p.ActivatePlan(plan_id=self.plan_id, now=NOW, by=THERAPIST))
        return self

    def log(self, number: int, *, pain: int = 2, rpe: float = 6, nprs: float | None = None,
            settled: bool | None = True, appointment: UUID | None = None,
            quick_measures: dict[str, float] | None = None, **extra: object) -> UUID:
        appointment = appointment or uuid4()
        exercises = [p.ExerciseDone(exercise=x.exercise, reps_per_set=(x.reps,) * x.sets,
                                    load_kg=x.load_kg, rpe=rpe, pain_during=pain)
                     for x in self.plan.content.prescriptions]
        quick = {**({} if nprs is None else {"nprs": nprs}), **(quick_measures or {})}
        self.do(p.LogSession(plan_id=self.plan_id, now=NOW + timedelta(days=3 * number),
                             appointment_id=appointment, session_number=number,
                             log=p.SessionLog(exercises=tuple(exercises),
                                              settled_next_morning=settled,
                                              quick_measures=quick, **extra),
                             rules=DEFAULT_RULES, by=THERAPIST))
        return appointment

    def check(self, today: date, sessions_used: int) -> list[object]:
        return self.do(p.CheckProgress(plan_id=self.plan_id, now=NOW, today=today,
                                       sessions_used=sessions_used, rules=DEFAULT_RULES))

    def measured(self, number: int, measures: list[MeasureScore] = (),
                 findings: list[FindingIndex] = ()) -> list[object]:
        return self.do(p.RecordMeasures(plan_id=self.plan_id, now=NOW, session_number=number,
                                        measures=tuple(measures), findings=tuple(findings)))

    def task(self, criterion_id: str, value: float = 1) -> list[object]:
        return self.do(p.RecordTaskResult(plan_id=self.plan_id, now=NOW,
                                          criterion_id=criterion_id, value=value,
                                          session_number=8, by=THERAPIST))

    def advance(self) -> list[object]:
        return self.do(p.AdvanceStage(plan_id=self.plan_id, now=NOW, by=THERAPIST))


def published(events: list[object]) -> list[object]:
    return [e.to_public() for e in events if hasattr(e, "to_public") and e.to_public()]


def finding(finding_id: str, index: str, value: float) -> FindingIndex:
    return FindingIndex(finding_id=finding_id, index=index, value=value, unit="%")


STRONG = [finding("strength:hip_abduction", "lsi_pct", 93),
          finding("strength:hip_external_rotation", "lsi_pct", 91),
          finding("movement:sls", "bilateral_rating", 2),
          finding("y_balance", "anterior_asymmetry_cm", 2)]
RESTORED = [finding("strength:hip_abduction", "lsi_pct", 86),
            finding("strength:hip_external_rotation", "lsi_pct", 86),
            finding("movement:sls", "bilateral_rating", 1)]


def test_the_worked_example_runs_from_evaluation_to_a_discharge_on_the_criteria() -> None:
    e = Episode().draft().activate()
    [created] = published(e.events)
    assert isinstance(created, public.PlanCreated) and created.expected_sessions == 8

    # S2, S3: every set done at RPE 6, pain 2, settled next morning → progress, accepted.
    for number in (2, 3):
        session = e.log(number, nprs=4)
        proposals = e.plan.session(session).proposals
        assert {x.action for x in proposals} == {"progress"}
        decided = e.do(p.DecideProgression(plan_id=e.plan_id, now=NOW, appointment_id=session,
                                           by=THERAPIST))
        [revised] = published(decided)
        assert isinstance(revised, public.PlanRevised) and revised.revision == number

    # S4: LEFS never moved from 52 and no stage-1 milestone is met → STALL-1.
    e.log(4, nprs=4)
    [flagged] = [x for x in e.check(TODAY + timedelta(days=12), sessions_used=4)
                 if isinstance(x, p.ReassessmentFlagged)]
    due = flagged.to_public()
    assert due.rules == ["STALL-1"] and due.reason == "progress_stalled"
    assert due.numbers["STALL-1.sessions_used"] == 4 and due.numbers["STALL-1.baseline"] == 52
    assert e.check(TODAY + timedelta(days=12), sessions_used=4) == [], "raised once"

    # The plan does not go on until the clinician answers the reassessment.
    with pytest.raises(p.ReassessmentOutstandingError):
        e.advance()
    e.do(p.ResolveReassessment(plan_id=e.plan_id, now=NOW, outcome="revise_plan",
                               free_text="Load adherence low; foot driver ruled out",
                               by=THERAPIST))
    assert e.plan.open_reassessment is None

    # Progression: pain settles, the home program is done, strength returns stage by stage.
    e.log(5, nprs=2)
    e.task("calm.home_program_adherence_pct", 90)
    assert e.advance()[0].transition.to_stage == "restore"
    e.measured(6, findings=RESTORED)
    assert e.advance()[0].transition.to_stage == "build"
    e.measured(7, measures=[MeasureScore(measure="lefs", version="1", scores={"lefs": 72})],
               findings=STRONG)
    [to_perform] = published(e.advance())
    assert isinstance(to_perform, public.StageAdvanced) and to_perform.to_stage == "perform"

    # Discharge is refused while one criterion (PSFS items, the running goal) is unmet …
    e.measured(8, measures=[MeasureScore(measure="psfs", version="1", scores={
        "psfs": 8.3, "psfs_01": 8, "psfs_02": 9, "psfs_03": 8})])
    with pytest.raises(DischargeRefusedError) as refused:
        e.do(p.DischargePatient(plan_id=e.plan_id, now=NOW, by=THERAPIST))
    assert refused.value.extensions["unmet"] == ["discharge.goal.running"]
    # … and allowed once all are met.
    e.task("discharge.goal.running")
    [discharged] = published(e.do(p.DischargePatient(plan_id=e.plan_id, now=NOW, by=THERAPIST)))
    assert isinstance(discharged, public.EpisodeDischarged)
    assert (discharged.basis, discharged.override_reason) == ("criteria_met", None)


def test_milestones_are_announced_met_once_when_their_result_first_passes() -> None:
    e = Episode().draft().activate()
    met = [x for x in e.measured(2, findings=RESTORED) if isinstance(x, p.MilestoneMet)]
    assert {x.milestone_id for x in met} == {
        "restore.strength:hip_abduction.lsi_pct", "restore.strength:hip_external_rotation.lsi_pct",
        "restore.movement:sls.bilateral_rating"}
    assert not [x for x in e.measured(3, findings=RESTORED) if isinstance(x, p.MilestoneMet)]


def test_a_discharge_override_records_who_why_and_when() -> None:
    e = Episode().draft().activate()
    when = NOW + timedelta(days=30)
    override = DischargeOverride(clinician_id=THERAPIST, reason_code="patient_withdrew",
                                 free_text="Moved abroad for work", timestamp=when)
    [event] = e.do(p.DischargePatient(plan_id=e.plan_id, now=when, by=THERAPIST,
                                      override=override))
    record = e.plan.discharge
    assert record is not None and record.basis == "override"
    assert (record.override.clinician_id, record.override.reason_code,
            record.override.free_text, record.override.timestamp) == (
        THERAPIST, "patient_withdrew", "Moved abroad for work", when)
    assert "discharge.lefs" in record.unmet
    public_event = event.to_public()
    assert (public_event.basis, public_event.override_reason, public_event.discharged_by) == (
        "override", "patient_withdrew", THERAPIST)
    assert "Moved abroad" not in public_event.model_dump_json(), "free text stays in plan"


def test_pain_reduction_alone_never_discharges() -> None:
    e = Episode().draft().activate()
    e.log(2, nprs=0)
    e.log(3, nprs=0)
    with pytest.raises(DischargeRefusedError):
        e.do(p.DischargePatient(plan_id=e.plan_id, now=NOW, by=THERAPIST))
    assert e.plan.status == "active"


def test_a_plan_without_discharge_criteria_cannot_be_activated() -> None:
    e = Episode().draft()
    bare = e.plan.content.model_copy(update={"discharge_criteria": ()})
    e.do(p.EditPlan(plan_id=e.plan_id, now=NOW, content=bare, by=THERAPIST,
                    known_exercises=frozenset(Library.seeded().codes)))
    with pytest.raises(PlanNotActivatableError):
        e.activate()
    assert e.plan.status == "draft"


def test_a_stage_advance_with_an_unmet_criterion_is_refused() -> None:
    e = Episode().draft().activate()
    e.log(2, nprs=2)  # pain met, the home program adherence not yet recorded
    with pytest.raises(ExitCriteriaUnmetError) as refused:
        e.advance()
    assert refused.value.extensions["unmet"] == ["calm.home_program_adherence_pct"]
    assert e.plan.stage == "calm"


def test_the_evaluation_delivered_twice_drafts_one_plan() -> None:
    e = Episode().draft()
    before = list(e.events)
    e.draft()
    assert e.events == before


def test_a_milestone_past_its_date_is_announced_overdue_once_and_stall_4_after_its_grace(
        ) -> None:
    e = Episode().draft().activate()
    calm = e.plan.content.stages[0]
    after = [type(x).__name__ for x in e.check(calm.target_date + timedelta(days=1), 3)]
    assert after == ["MilestoneOverdue", "MilestoneOverdue"]
    assert e.check(calm.target_date + timedelta(days=2), 3) == []
    grace = DEFAULT_RULES.stalls.grace_days("acute_clear_driver")
    [flag] = e.check(calm.target_date + timedelta(days=grace), 3)
    assert [f.rule for f in flag.flags] == ["STALL-4"]


def test_the_next_check_is_the_day_after_a_milestone_date_then_the_end_of_its_grace() -> None:
    e = Episode().draft().activate()
    calm = e.plan.content.stages[0]
    assert p.next_check(e.plan, DEFAULT_RULES, TODAY) == calm.target_date + timedelta(days=1)
    e.check(calm.target_date + timedelta(days=1), 3)
    assert p.next_check(e.plan, DEFAULT_RULES, calm.target_date + timedelta(days=1)) == (
        calm.target_date + timedelta(days=7))


def test_manual_therapy_is_logged_only_linked_to_an_active_program_goal() -> None:
    e = Episode().draft().activate()
    with pytest.raises(ManualTherapyNotLinkedError):
        e.log(2, manual_therapy=p.ManualTherapy(technique="Patellar taping",
                                                goal="build.y_balance.anterior_asymmetry_cm"))
    e.log(2, manual_therapy=p.ManualTherapy(technique="Patellar taping", goal="calm.nprs"))
    assert e.plan.sessions[0].log.manual_therapy is not None


def test_an_exercise_not_in_the_plan_cannot_be_logged() -> None:
    e = Episode().draft().activate()
    with pytest.raises(p.UnprescribedExerciseError):
        e.do(p.LogSession(plan_id=e.plan_id, now=NOW, appointment_id=uuid4(), session_number=2,
                          log=p.SessionLog(exercises=(p.ExerciseDone(
                              exercise="deadlift_from_the_moon", reps_per_set=(5,), rpe=5,
                              pain_during=0),)), rules=DEFAULT_RULES, by=THERAPIST))


def test_progress_waits_for_the_next_morning_answer() -> None:
    e = Episode().draft().activate()
    session = e.log(2, settled=None)
    assert {x.action for x in e.plan.session(session).proposals} == {"hold"}
    e.do(p.RecordNextMorning(plan_id=e.plan_id, now=NOW, appointment_id=session, settled=True,
                             rules=DEFAULT_RULES))
    assert {x.action for x in e.plan.session(session).proposals} == {"progress"}


def test_a_session_logged_twice_with_the_same_form_is_one_log() -> None:
    e = Episode().draft().activate()
    session = e.log(2, nprs=3)
    log = e.plan.session(session).log
    assert e.do(p.LogSession(plan_id=e.plan_id, now=NOW, appointment_id=session,
                             session_number=2, log=log, rules=DEFAULT_RULES, by=THERAPIST)) == []
    with pytest.raises(p.SessionAlreadyLoggedError):
        e.log(2, nprs=5, appointment=session)


def test_a_plan_naming_an_exercise_outside_the_library_is_refused() -> None:
    e = Episode().draft()
    content = e.plan.content
    odd = content.prescriptions[0].model_copy(update={"exercise": "moon_walk"})
    with pytest.raises(UnknownExerciseError):
        e.do(p.EditPlan(plan_id=e.plan_id, now=NOW, by=THERAPIST,
                        content=content.model_copy(update={"prescriptions": (odd,)}),
                        known_exercises=frozenset(Library.seeded().codes)))
    assert e.plan.content == content


# -- a stall is raised once: an answered flag is not raised again (§3.2) ------------------------

CALM_DUE = date(2025, 5, 16)  # the drafted calm stage's target date
ACUTE_GRACE = DEFAULT_RULES.stalls.grace_days("acute_clear_driver")


def flags_of(events: list[object]) -> list[object]:
    return [f for x in events if isinstance(x, p.ReassessmentFlagged) for f in x.flags]


def answer(e: Episode) -> None:
    e.do(p.ResolveReassessment(plan_id=e.plan_id, now=NOW, outcome="continue_with_reason",
                               free_text="Explained to the patient; continue", by=THERAPIST))


def test_stall_4_is_not_raised_again_for_an_answered_milestone_when_another_is_met() -> None:
    e = Episode().draft().activate()
    [flag] = flags_of(e.check(CALM_DUE + timedelta(days=ACUTE_GRACE), 3))
    assert flag.numbers["milestone_ids"] == ("calm.nprs", "calm.home_program_adherence_pct")
    answer(e)
    e.task("calm.home_program_adherence_pct", 90)  # one of the two is met; calm.nprs is not
    assert flags_of(e.check(CALM_DUE + timedelta(days=ACUTE_GRACE + 1), 3)) == []
    assert e.plan.open_reassessment is None


def test_stall_4_is_raised_again_only_for_a_milestone_newly_overdue() -> None:
    e = Episode().draft().activate()
    e.check(CALM_DUE + timedelta(days=ACUTE_GRACE), 3)
    answer(e)
    restore = e.plan.content.stages[1]
    [flag] = flags_of(e.check(restore.target_date + timedelta(days=ACUTE_GRACE), 3))
    assert set(flag.numbers["milestone_ids"]) == {c.id for c in restore.exit_criteria}


def test_stall_4_is_raised_again_when_a_revised_target_date_passes_unmet() -> None:
    e = Episode().draft().activate()
    e.check(CALM_DUE + timedelta(days=ACUTE_GRACE), 3)
    answer(e)
    later = CALM_DUE + timedelta(days=10)
    content = e.plan.content
    calm = content.stages[0].model_copy(update={"target_date": later})
    e.do(p.EditPlan(plan_id=e.plan_id, now=NOW, by=THERAPIST, reason="Calm needs longer",
                    content=content.model_copy(update={"stages": (calm, *content.stages[1:])}),
                    known_exercises=frozenset(Library.seeded().codes)))
    assert flags_of(e.check(later + timedelta(days=ACUTE_GRACE - 1), 3)) == []
    [flag] = flags_of(e.check(later + timedelta(days=ACUTE_GRACE), 3))
    assert flag.numbers["milestone_ids"] == ("calm.nprs", "calm.home_program_adherence_pct")


def test_stall_4_keys_raised_before_one_key_per_milestone_still_count_as_answered() -> None:
    e = Episode().draft().activate()
    # What an episode answered before the upgrade recorded: one key naming both milestones.
    legacy = p.ReassessmentFlagged(
        plan_id=e.plan_id, ids=e.plan.ids, flags=(), due_by=CALM_DUE, ruleset_version=1,
        keys=("STALL-4:calm.nprs,calm.home_program_adherence_pct",), at=NOW)
    e.state = p.evolve(p.evolve(e.state, legacy), p.ReassessmentResolved(
        plan_id=e.plan_id, ids=e.plan.ids, outcome="continue_with_reason", rules=("STALL-4",),
        free_text="Answered before the upgrade", by=THERAPIST, at=NOW))
    e.task("calm.home_program_adherence_pct", 90)
    assert flags_of(e.check(CALM_DUE + timedelta(days=ACUTE_GRACE + 1), 3)) == []


FLARE_DAY = TODAY + timedelta(days=9)  # before any milestone is overdue: STALL-3 alone


def test_stall_3_a_continuing_flare_is_one_reassessment_not_one_per_session() -> None:
    e = Episode().draft().activate()  # NPRS 6 at baseline
    e.log(2, nprs=8)
    e.log(3, nprs=8)
    [flag] = flags_of(e.check(FLARE_DAY, 3))
    assert flag.rule == "STALL-3" and flag.numbers["sessions"] == (2, 3)
    answer(e)
    for number in (4, 5):
        e.log(number, nprs=9)  # the same flare, still ≥ 2 points worse
        assert flags_of(e.check(FLARE_DAY, 3)) == []


def test_stall_3_is_raised_again_after_a_session_that_was_not_worse_broke_the_run() -> None:
    e = Episode().draft().activate()
    e.log(2, nprs=8)
    e.log(3, nprs=8)
    e.check(FLARE_DAY, 3)
    answer(e)
    e.log(4, nprs=5)  # settled: the run is over
    assert flags_of(e.check(FLARE_DAY, 3)) == []
    e.log(5, nprs=8)
    assert flags_of(e.check(FLARE_DAY, 3)) == [], "one worse session is not yet a run"
    e.log(6, nprs=8)
    [flag] = flags_of(e.check(FLARE_DAY, 3))
    assert flag.rule == "STALL-3"
    assert (flag.numbers["sessions"], flag.numbers["run_from"]) == ((5, 6), 5)


def test_stall_3_another_measure_worsening_is_raised_while_an_answered_flare_goes_on() -> None:
    e = Episode().draft().activate()  # LEFS 52 at baseline: worse by its MCID 9 at 43
    e.log(2, nprs=8)
    e.log(3, nprs=8)
    e.check(FLARE_DAY, 3)
    answer(e)
    e.log(4, nprs=8, quick_measures={"lefs": 42})
    e.log(5, nprs=8, quick_measures={"lefs": 41})
    [flag] = flags_of(e.check(FLARE_DAY, 3))
    assert (flag.rule, flag.numbers["measure"], flag.numbers["run_from"]) == (
        "STALL-3", "lefs", 4)


def test_stall_3_keys_raised_before_one_key_per_run_still_count_for_that_run() -> None:
    e = Episode().draft().activate()
    e.log(2, nprs=8)
    e.log(3, nprs=8)
    e.log(4, nprs=8)
    # Recorded before the upgrade: the window of the last two sessions.
    e.state = p.evolve(e.state, p.ReassessmentFlagged(
        plan_id=e.plan_id, ids=e.plan.ids, flags=(), due_by=TODAY, ruleset_version=1,
        keys=("STALL-3:nprs:(3, 4)",), at=NOW))
    answer(e)
    e.log(5, nprs=9)
    assert flags_of(e.check(FLARE_DAY, 3)) == []


# -- a session's quick measures are numbers its measure can give --------------------------------

def test_a_quick_measure_outside_its_scale_is_refused_and_nothing_is_logged() -> None:
    e = Episode().draft().activate()
    for quick in ({"lefs": 900}, {"nprs": -4}, {"psfs_01": 11}, {"tsk17": 12}):
        with pytest.raises(ScoreOutOfRangeError) as refused:
            e.log(2, quick_measures=quick)
        assert refused.value.extensions["score"] == next(iter(quick))
    assert e.plan.sessions == () and e.plan.results == () and e.plan.readings == {}


@pytest.mark.parametrize("quick", [{"nprs": 3.5}, {"lefs": 61.2}, {"psfs_01": 6.5},
                                   {"odi": 33.35}, {"groc": 2.5}])
def test_a_quick_measure_finer_than_its_score_is_refused_and_nothing_is_logged(quick) -> None:
    e = Episode().draft().activate()
    with pytest.raises(ScorePrecisionError) as refused:
        e.log(2, quick_measures=quick)
    assert refused.value.extensions["score"] == next(iter(quick))
    assert e.plan.sessions == () and e.plan.readings == {}


def test_a_quick_measure_no_measure_reports_is_refused() -> None:
    e = Episode().draft().activate()
    with pytest.raises(UnknownScoreError):
        e.log(2, quick_measures={"nrps": 3})
    assert e.plan.sessions == ()


@pytest.mark.parametrize("quick", [{"nprs": 0}, {"nprs": 10}, {"lefs": 80}, {"groc": -7},
                                   {"tsk17": 68}, {"psfs": 5.3, "koos_adl": 100},
                                   {"odi": 33.3, "ndi_pct": 0.1}])
def test_a_quick_measure_at_its_scales_ends_is_logged(quick) -> None:
    e = Episode().draft().activate()
    e.log(2, quick_measures=quick)
    assert len(e.plan.sessions) == 1
    assert {k: v[-1].value for k, v in e.plan.readings.items()} == quick


def test_a_quick_measure_that_is_not_a_number_is_refused_by_the_session_log() -> None:
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValidationError):
            p.SessionLog(quick_measures={"nprs": value})
    with pytest.raises(ValidationError):
        p.SessionLog.model_validate_json('{"quick_measures": {"nprs": NaN}}')


# -- the therapist records results of tasks only -----------------------------------------------

@pytest.mark.parametrize("criterion_id", ["discharge.lefs", "calm.nprs", "discharge.psfs.psfs_01",
                                          "build.y_balance.anterior_asymmetry_cm"])
def test_a_result_for_a_prom_or_finding_criterion_cannot_be_typed_in_as_a_task(
        criterion_id) -> None:
    e = Episode().draft().activate()
    with pytest.raises(p.NotATaskCriterionError) as refused:
        e.task(criterion_id, 80)
    assert refused.value.extensions["criterion"] == criterion_id
    assert e.plan.results == ()


def test_a_task_result_is_recorded() -> None:
    e = Episode().draft().activate()
    e.task("calm.home_program_adherence_pct", 85)
    assert [(r.criterion_id, r.value) for r in e.plan.results] == [
        ("calm.home_program_adherence_pct", 85)]


# -- a "+N from baseline" criterion needs its baseline ------------------------------------------

def with_gain_criterion(content, baselines: dict[str, float] | None = None):
    """The calm stage asks for PSFS at least +2 from baseline, with ``baselines``."""
    gain = Criterion(id="calm.psfs_gain", kind="functional", label="PSFS +2 from baseline",
                     source="measure", ref="psfs", op=">=", target=5, min_gain=2)
    calm = content.stages[0]
    calm = calm.model_copy(update={"exit_criteria": (*calm.exit_criteria, gain)})
    return content.model_copy(update={
        "stages": (calm, *content.stages[1:]),
        "criterion_baselines": {**content.criterion_baselines, **(baselines or {})}})


def edit(e: Episode, content) -> list[object]:
    return e.do(p.EditPlan(plan_id=e.plan_id, now=NOW, by=THERAPIST, content=content,
                           known_exercises=frozenset(Library.seeded().codes)))


def test_a_draft_edit_adding_a_gain_criterion_without_its_baseline_is_refused() -> None:
    e = Episode().draft()
    before = e.plan.content
    with pytest.raises(BaselineRequiredError) as refused:
        edit(e, with_gain_criterion(before))
    assert refused.value.extensions["criterion"] == "calm.psfs_gain"
    assert "calm.psfs_gain" in refused.value.detail
    assert e.plan.content == before


def test_a_plan_revision_adding_a_gain_criterion_without_its_baseline_is_refused() -> None:
    e = Episode().draft().activate()
    with pytest.raises(BaselineRequiredError):
        edit(e, with_gain_criterion(e.plan.content))
    assert e.plan.revision == 1


def test_a_gain_criterion_with_its_baseline_is_accepted_and_judged() -> None:
    e = Episode().draft().activate()
    edit(e, with_gain_criterion(e.plan.content, {"calm.psfs_gain": 3.7}))
    e.log(2, quick_measures={"psfs": 5.7})
    assert e.plan.verdicts()["calm.psfs_gain"] is True


def test_a_plan_drafted_with_a_gain_criterion_without_its_baseline_is_refused() -> None:
    done = evaluation()
    content = with_gain_criterion(draft())
    with pytest.raises(BaselineRequiredError):
        p.decide(p.DraftPlan(plan_id=uuid4(), now=NOW, episode_id=done.episode_id,
                             patient_id=done.patient_id, location_id=done.location_id,
                             evaluation_id=done.evaluation_id, content=content,
                             rules=DEFAULT_RULES), None)


def test_a_draft_stored_without_a_gains_baseline_cannot_be_activated() -> None:
    e = Episode().draft()
    # Edited before edits were checked: the stored draft still loads, and is not activated.
    e.state = p.evolve(e.state, p.PlanEdited(plan_id=e.plan_id, revision=0, by=THERAPIST,
                                             at=NOW, content=with_gain_criterion(e.plan.content)))
    with pytest.raises(BaselineRequiredError):
        e.activate()
    assert e.plan.status == "draft"
