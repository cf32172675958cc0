"""The first draft of a care plan, built from assessment's ``evaluation.completed``: what the
therapist then edits and activates (issue #7). It states the expected course (§3.1), the four
DEFAULT stages with exit criteria built from what was measured (§3.3), the discharge criteria
built from the patient's goals (§3.5), the measures the stall rules track (§3.2) and first
prescriptions for each driver (§4). Pure: the rule set, the library and today are passed in.

Choices the draft makes (the therapist may change each):
- Course: the episode type's expected maximum sessions (8 / 20), over the span's maximum
  (8 weeks; 5 months counted as 30.44 days each, the mean month). A goal with a target date
  after today and before that end brings the end forward: the patient's date is the one the
  plan is held to. A goal date on or before today is ignored, as it can no longer be planned
  for.
- Stage target dates: the span shared like §5 (weeks 2, 4, 8 and 10 of 10), each rounded
  down to a whole day, so no stage is due later than its share.
- Primary measure: the region PROM (LEFS, KOOS, VISA-A/P, ODI, NDI, QuickDASH, SPADI), else
  the PSFS mean, else NPRS. Among several the rule set's order decides, except that a
  subscale that does not score function (KOOS pain, symptoms, QoL) comes last: the primary
  PROM is the functional end point, and pain reduction alone never satisfies it (§3.5).
- Criteria read assessment's finding indices: "lsi_pct" of each driver's findings, the hop
  battery's "<hop>_lsi_pct", Y-balance "anterior_asymmetry_cm", heel raise "involved_reps",
  and "bilateral_rating" of a single-leg squat (or of a movement test a driver cites), which
  assessment scores poor 0, fair 1, good 2. A finding not recorded at baseline gets no
  criterion: the draft states targets for what was measured.
- A task criterion is recorded by the clinician; for a yes/no task (a goal reached, a stage
  task done) the result 1 means achieved and 0 not, so its target is ">= 1".
- Stage 1 always asks for the home program to be done (§3.3 "the patient can do the home
  program"; §5 "≥80% of days"), besides pain ≤ 3/10 when NPRS was measured.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from kinetic_contracts.assessment.v1.events import EvaluationCompleted, FindingIndex, Goal
from kinetic_contracts.problems import RuleViolationError
from plan.domain import scales
from plan.domain.content import Baseline, PlanContent
from plan.domain.criteria import Comparison, Criterion, CriterionKind
from plan.domain.discharge import ExpectedCourse, expected_course, validate_discharge_criteria
from plan.domain.exercises import Library
from plan.domain.prescription import Prescription
from plan.domain.rules import PlanRules
from plan.domain.stages import Stage, default_stages

DAYS_PER_WEEK = 7
DAYS_PER_MONTH = Decimal("30.44")  # 365.25 / 12
# §5: calm by week 2, restore by 4, build by 8, perform by 10 of a 10-week plan.
STAGE_SHARE: Mapping[str, Fraction] = {"calm": Fraction(2, 10), "restore": Fraction(4, 10),
                                       "build": Fraction(8, 10), "perform": Fraction(1)}
# PlanContent's bounds; the lower one is the least a one-decimal rate can say.
MIN_SESSIONS_PER_WEEK = Decimal("0.1")
MAX_SESSIONS_PER_WEEK = Decimal(7)

# Measures that are never the primary PROM: pain, the patient's own activities, the anchor
# and the screen (§1). PSFS and NPRS are the fallbacks when no region PROM was measured.
NPRS, PSFS = "nprs", "psfs"
NOT_REGION_PROMS = frozenset({NPRS, PSFS, "groc", "tsk17"})
# Subscales that do not score function; the functional end point should be one that does.
NOT_FUNCTION_SUBSCALES = frozenset({"koos_pain", "koos_symptoms", "koos_qol", "spadi_pain"})
MEASURE_NAMES = {"lefs": "LEFS", "odi": "ODI", "ndi": "NDI", "quickdash": "QuickDASH",
                 "psfs": "PSFS (mean)", "visa_a": "VISA-A", "visa_p": "VISA-P",
                 "spadi": "SPADI", "koos_pain": "KOOS Pain", "koos_symptoms": "KOOS Symptoms",
                 "koos_adl": "KOOS ADL", "koos_sport_rec": "KOOS Sport/Rec",
                 "koos_qol": "KOOS QoL"}

# Assessment's finding indices (assessment.domain.findings.compute).
LSI = "lsi_pct"
HOP_LSIS = ("single_hop_lsi_pct", "triple_hop_lsi_pct", "crossover_hop_lsi_pct",
            "timed_6m_hop_lsi_pct")
Y_BALANCE = "anterior_asymmetry_cm"
HEEL_RAISE_REPS = "involved_reps"
RATING = "bilateral_rating"  # the worse side's rating
SLS = "movement:sls"
RATING_FAIR, RATING_GOOD = 1, 2
FINDING_NAMES = {SLS: "Single-leg squat", "y_balance": "Y-balance",
                 "heel_raise": "Heel raise", "hop_battery": "Hop battery"}

TASK_DONE = 1
FIRST_STAGE = 1
EXERCISES_PER_DRIVER = 2
# Symptom-site code prefixes (assessment's "knee_anterior_right") to library regions.
SITE_REGIONS: tuple[tuple[str, str], ...] = (
    ("knee", "knee"), ("patell", "knee"), ("achilles", "ankle"), ("ankle", "ankle"),
    ("calf", "ankle"), ("shoulder", "shoulder"), ("low_back", "trunk"), ("lumbar", "trunk"),
    ("hip", "hip"))

# Criterion's limits: an id or a ref longer than these would be refused.
ID_MAX = 100
REF_MAX = 100
LABEL_MAX = 200
TASK_CODE_MAX = 60


class NothingToTrackError(RuleViolationError):
    type_slug = "nothing-to-track"
    title = ("The evaluation has no baseline measure the rule set knows, so the plan has "
             "nothing to track")


def draft_plan(evaluation: EvaluationCompleted, library: Library, rules: PlanRules,
               today: date) -> PlanContent:
    """The plan the evaluation suggests, for the therapist to edit. Raises
    NothingToTrackError when no baseline score has a rule (direction and MCID)."""
    baselines = _known_baselines(evaluation, rules)
    if not baselines:
        raise NothingToTrackError(
            "no baseline measure of the evaluation has a direction and MCID in rule set "
            f"v{rules.version}: record a PROM or NPRS first",
            measures=[m.measure for m in evaluation.baseline_measures])
    primary = _primary(baselines, rules)
    findings = _Findings(evaluation)

    course = expected_course(evaluation.episode_type)
    end = _end_date(course, evaluation.goals, today)
    span_days = (end - today).days

    functional, gain_baselines = _functional(primary, rules)
    discharge = (functional, *_performance("discharge", findings, rules),
                 *_sport_work(evaluation, rules))
    validate_discharge_criteria(discharge)

    exits = {"calm": _calm(baselines, rules), "restore": _restore(findings, rules),
             "build": _build(findings, rules), "perform": discharge}
    stages = tuple(_dated(s, today, span_days) for s in default_stages(exits))
    return PlanContent(
        episode_type=evaluation.episode_type, primary=primary,
        tracked=tuple(b for b in baselines if b is not primary), stages=stages,
        prescriptions=_prescriptions(evaluation, library, today),
        discharge_criteria=discharge, criterion_baselines=gain_baselines,
        expected_sessions=course.sessions_max,
        sessions_per_week=_per_week(course.sessions_max, span_days), target_date=end)


# -- measures ---------------------------------------------------------------------------------

def _known_baselines(evaluation: EvaluationCompleted, rules: PlanRules) -> list[Baseline]:
    """Every baseline score the rule set can read a change of, once each, in the order the
    evaluation lists them. PSFS items have no rule of their own: they become criteria."""
    out: dict[str, Baseline] = {}
    for measured in evaluation.baseline_measures:
        for key, value in measured.scores.items():
            rule = rules.measure_rule(measured.measure, key)
            if rule is not None and rule.name not in out:
                out[rule.name] = Baseline(rule=rule, value=value)
    return list(out.values())


def _primary(baselines: Sequence[Baseline], rules: PlanRules) -> Baseline:
    order = {r.name: i for i, r in enumerate(rules.measures)}

    def rank(b: Baseline) -> tuple[int, int, int]:
        tier = 0 if b.rule.measure not in NOT_REGION_PROMS else (
            1 if b.rule.measure == PSFS else 2)
        return tier, b.key in NOT_FUNCTION_SUBSCALES, order[b.rule.name]

    return min(baselines, key=rank)


def _measure_name(key: str) -> str:
    return MEASURE_NAMES.get(key, key.replace("_", " ").upper())


# -- course -----------------------------------------------------------------------------------

def _end_date(course: ExpectedCourse, goals: Iterable[Goal], today: date) -> date:
    per_unit = DAYS_PER_WEEK if course.span_unit == "weeks" else DAYS_PER_MONTH
    days = int((course.span_max * Decimal(per_unit)).quantize(Decimal(1), ROUND_HALF_UP))
    end = today + timedelta(days=days)
    goal_dates = [g.target_date for g in goals
                  if g.target_date is not None and g.target_date > today]
    return min([end, *goal_dates])


def _per_week(sessions: int, span_days: int) -> float:
    rate = Decimal(sessions) * DAYS_PER_WEEK / Decimal(span_days)
    rate = min(max(rate, MIN_SESSIONS_PER_WEEK), MAX_SESSIONS_PER_WEEK)
    return float(rate.quantize(Decimal("0.1"), ROUND_HALF_UP))


def _dated(stage: Stage, today: date, span_days: int) -> Stage:
    share = STAGE_SHARE.get(stage.code, Fraction(1))
    return stage.model_copy(
        update={"target_date": today + timedelta(days=int(span_days * share))})


# -- criteria ---------------------------------------------------------------------------------

def _criterion_id(*parts: str) -> str:
    """Parts joined by dots; one too long for a criterion id is cut and given a digest of the
    whole, so it stays unique and the same at every draft."""
    whole = ".".join(parts)
    if len(whole) <= ID_MAX:
        return whole
    digest = hashlib.sha1(whole.encode()).hexdigest()[:8]
    return f"{whole[:ID_MAX - len(digest) - 1]}-{digest}"


def _label(text: str) -> str:
    return text if len(text) <= LABEL_MAX else f"{text[:LABEL_MAX - 1]}…"


def _finding_criterion(stage: str, kind: CriterionKind, finding: FindingIndex, op: Comparison,
                       target: float, label: str) -> Criterion:
    return Criterion(id=_criterion_id(stage, finding.finding_id, finding.index), kind=kind,
                     label=_label(label), source="finding", ref=finding.finding_id,
                     key=finding.index, op=op, target=target)


def _task(stage: str, kind: CriterionKind, ref: str, label: str, op: Comparison = ">=",
          target: float = TASK_DONE, group: str | None = None) -> Criterion:
    # ``group`` keeps goal tasks apart from the draft's own ids ("discharge.goal.lefs" is
    # the patient's goal, "discharge.lefs" the PROM end point).
    parts = (stage, group, ref) if group else (stage, ref)
    return Criterion(id=_criterion_id(*parts), kind=kind, label=_label(label),
                     source="task", ref=ref, op=op, target=target)


def _functional(primary: Baseline, rules: PlanRules) -> tuple[Criterion, dict[str, float]]:
    """The PROM end point: at least the MCID from baseline in the good direction (with the
    noise guard the stall rules use, so "improved" means one thing) and at least the rule
    set's DEFAULT target where it has one ("LEFS ≥ 70 and ≥ +9", §5). A baseline within one
    MCID of the scale's end would give a target past it, which no patient reaches: the target
    is the scale's end and the gain what is left to it (none at the end itself).

    NPRS cannot be the functional end point (§3.5). When it is all that was measured, the
    draft asks for the PSFS mean the patient will rate at the next session, without a gain."""
    rule, key = primary.rule, primary.key
    if rule.measure == NPRS:
        target = rules.criteria.psfs_item_discharge
        return Criterion(
            id=_criterion_id("discharge", PSFS), kind="functional",
            label=f"PSFS (mean) ≥ {target:g} (no function PROM at baseline)",
            source="measure", ref=PSFS, op=">=", target=target), {}
    gain = Decimal(str(rule.improvement_bar(primary.value)))
    default = rules.criteria.discharge_target(key)
    higher = rule.direction == "higher_better"
    baseline = Decimal(str(primary.value))
    target = baseline + (gain if higher else -gain)
    if default is not None:
        target = max(target, Decimal(str(default))) if higher else min(
            target, Decimal(str(default)))
    scale = scales.SCALES.get(key)
    at_end = scale is not None and not scale.holds(float(target))
    if scale is not None and at_end:
        # A baseline within one MCID of the scale's end: the end is as far as it goes.
        target = Decimal(str(scale.clamp(float(target))))
        gain = min(gain, abs(target - baseline))
    op: Comparison = ">=" if higher else "<="
    better = f"+{float(gain):g} from" if higher else f"{float(gain):g} lower than"
    end = " (the scale's end)" if at_end else ""
    wanted = f"{_measure_name(key)} {'≥' if higher else '≤'} {float(target):g}{end}"
    criterion = Criterion(
        id=_criterion_id("discharge", key), kind="functional",
        label=f"{wanted} and at least {better} baseline {primary.value:g}" if gain > 0
        else f"{wanted}, as at baseline",
        source="measure", ref=rule.measure, key=None if key == rule.measure else key,
        op=op, target=float(target), min_gain=float(gain) if gain > 0 else None)
    return criterion, {criterion.id: primary.value} if gain > 0 else {}


class _Findings:
    """The evaluation's finding indices, and which of them the criteria read."""

    def __init__(self, evaluation: EvaluationCompleted) -> None:
        # A finding id a criterion cannot name (over its ref limit) is left to the therapist.
        self.all = [f for f in evaluation.findings if len(f.finding_id) <= REF_MAX]
        cited = dict.fromkeys(fid for d in evaluation.drivers for fid in d.finding_ids)
        self.driver_ids = tuple(cited)

    def indexed(self, index: str, finding_ids: Iterable[str] | None = None
                ) -> list[FindingIndex]:
        """Findings with this index: of ``finding_ids`` in their order, else all recorded."""
        found = {(f.finding_id, f.index): f for f in self.all}
        if finding_ids is None:
            return [f for f in self.all if f.index == index]
        return [found[(fid, index)] for fid in finding_ids if (fid, index) in found]

    def driver_lsis(self) -> list[FindingIndex]:
        return self.indexed(LSI, self.driver_ids)

    def ratings(self) -> list[FindingIndex]:
        """The single-leg squat, and any rated movement a driver cites (a step-down)."""
        return self.indexed(RATING, dict.fromkeys((SLS, *self.driver_ids)))

    def heel_raise_lsis(self) -> list[FindingIndex]:
        # The heel raise's LSI and reps are one §2 test; a driver's LSI is already in.
        tested = [f.finding_id for f in self.indexed(HEEL_RAISE_REPS)]
        return [f for f in self.indexed(LSI, tested) if f.finding_id not in self.driver_ids]


def _finding_name(finding_id: str) -> str:
    if finding_id in FINDING_NAMES:
        return FINDING_NAMES[finding_id]
    kind, _, what = finding_id.rpartition(":")
    name = what.replace("_", " ").capitalize()
    return f"{name} strength" if kind == "strength" else name


def _lsi_criteria(stage: str, findings: Iterable[FindingIndex], target: float
                  ) -> list[Criterion]:
    return [_finding_criterion(stage, "performance", f, ">=", target,
                               f"{_finding_name(f.finding_id)} LSI ≥ {target:g}%")
            for f in findings]


def _rating_criteria(stage: str, findings: _Findings, floor: int, word: str
                     ) -> list[Criterion]:
    # The worse side's rating: "fair" on both sides is the worse side at least fair.
    at_least = "" if floor == RATING_GOOD else " or better"
    return [_finding_criterion(stage, "performance", f, ">=", floor,
                               f'{_finding_name(f.finding_id)} rated "{word}"{at_least} on '
                               f'both sides')
            for f in findings.ratings()]


def _tested_criteria(stage: str, findings: _Findings, rules: PlanRules) -> list[Criterion]:
    """§2 tests recorded at baseline with a threshold of their own: Y-balance and heel raise."""
    c = rules.criteria
    out = [_finding_criterion(stage, "performance", f, "<", c.ybal_ant_cm,
                              f"{_finding_name(f.finding_id)} anterior asymmetry "
                              f"< {c.ybal_ant_cm:g} cm")
           for f in findings.indexed(Y_BALANCE)]
    out += _lsi_criteria(stage, findings.heel_raise_lsis(), c.lsi_pass)
    out += [_finding_criterion(stage, "performance", f, ">=", c.heel_raise_min,
                               f"{_finding_name(f.finding_id)} ≥ {c.heel_raise_min} reps on "
                               f"the involved side")
            for f in findings.indexed(HEEL_RAISE_REPS)]
    return out


def _calm(baselines: Sequence[Baseline], rules: PlanRules) -> list[Criterion]:
    c = rules.criteria
    out = [_task("calm", "other", "home_program_adherence_pct",
                 f"Home program done on ≥ {c.adherence_pct_stage1:g}% of days", ">=",
                 c.adherence_pct_stage1)]
    if any(b.rule.measure == NPRS for b in baselines):
        out.insert(0, Criterion(id=_criterion_id("calm", NPRS), kind="pain",
                                label=f"Pain in daily tasks ≤ {c.pain_max_stage1:g}/10 (NPRS)",
                                source="measure", ref=NPRS, op="<=",
                                target=c.pain_max_stage1))
    return out


def _restore(findings: _Findings, rules: PlanRules) -> list[Criterion]:
    out = [*_lsi_criteria("restore", findings.driver_lsis(), rules.criteria.stage2_lsi_pass),
           *_rating_criteria("restore", findings, RATING_FAIR, "fair")]
    return out or [_task("restore", "other", "driver_program_at_prescribed_load",
                         "Driver exercises done at the prescribed load within the "
                         "pain-monitoring rules")]


def _build(findings: _Findings, rules: PlanRules) -> list[Criterion]:
    out = [*_lsi_criteria("build", findings.driver_lsis(), rules.criteria.lsi_pass),
           *_rating_criteria("build", findings, RATING_GOOD, "good"),
           *_tested_criteria("build", findings, rules)]
    return out or [_task("build", "performance", "graded_load_tolerated",
                         "Graded run/lift volume tolerated within the pain-monitoring rules")]


def _performance(stage: str, findings: _Findings, rules: PlanRules) -> list[Criterion]:
    c = rules.criteria
    hops = [f for index in HOP_LSIS for f in findings.indexed(index)]
    out = [*_lsi_criteria(stage, findings.driver_lsis(), c.lsi_pass),
           *_rating_criteria(stage, findings, RATING_GOOD, "good"),
           *_tested_criteria(stage, findings, rules),
           *[_finding_criterion(stage, "performance", f, ">=", c.lsi_pass,
                                f"{_hop_name(f.index)} LSI ≥ {c.lsi_pass:g}%")
             for f in hops]]
    return out or [_task(stage, "performance", "main_lift_pct_prior_load",
                         f"Main strength lift at ≥ {c.prior_load_pct:g}% of the pre-injury "
                         f"working load", ">=", c.prior_load_pct)]


def _hop_name(index: str) -> str:
    return index.removesuffix("_lsi_pct").replace("_", " ").capitalize()


def _task_code(activity: str) -> str:
    """A goal's activity as a lower_snake code ("Run 30 min!" -> "run_30_min")."""
    plain = unicodedata.normalize("NFKD", activity).encode("ascii", "ignore").decode()
    code = re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")[:TASK_CODE_MAX].strip("_")
    if not code:
        return "goal"
    return code if code[0].isalpha() else f"goal_{code}"


def _sport_work(evaluation: EvaluationCompleted, rules: PlanRules) -> list[Criterion]:
    """One task per goal (recorded 1 when the patient does it at the level asked), and every
    PSFS activity rated at baseline at the discharge score."""
    out: list[Criterion] = []
    used: set[str] = set()
    for goal in evaluation.goals:
        ref, n = _task_code(goal.activity), 1
        while ref in used:  # two goals of one activity ("running" at two levels)
            n += 1
            ref = f"{_task_code(goal.activity)}_{n}"
        used.add(ref)
        out.append(_task("discharge", "sport_work", ref, f"{goal.activity} at {goal.level}",
                         group="goal"))
    target = rules.criteria.psfs_item_discharge
    for measured in evaluation.baseline_measures:
        if measured.measure != PSFS:
            continue
        for item in sorted(k for k in measured.scores if k != PSFS):
            number = item.removeprefix(f"{PSFS}_").lstrip("0") or item
            out.append(Criterion(id=_criterion_id("discharge", PSFS, item), kind="sport_work",
                                 label=f"PSFS activity {number} ≥ {target:g}", source="measure",
                                 ref=PSFS, key=item, op=">=", target=target))
        break
    return out


# -- prescriptions ----------------------------------------------------------------------------

def _site_region(site: str) -> str | None:
    return next((region for prefix, region in SITE_REGIONS if site.startswith(prefix)), None)


def _prescriptions(evaluation: EvaluationCompleted, library: Library, today: date
                   ) -> tuple[Prescription, ...]:
    """Up to two stage-1 exercises per driver, then one stage-1 exercise for the symptom
    site's region (symptom-site work, no driver). An exercise is prescribed once: the first
    driver that picks it keeps it."""
    out: list[Prescription] = []
    used: set[str] = set()
    for driver in evaluation.drivers:
        fresh = [e for e in library.for_driver(driver.code, FIRST_STAGE) if e.code not in used]
        for exercise in fresh[:EXERCISES_PER_DRIVER]:
            out.append(library.prescribe(exercise.code, today, driver=driver.code))
            used.add(exercise.code)
    for site in evaluation.symptom_sites:
        region = _site_region(site)
        fresh = [e for e in library.for_region(region, FIRST_STAGE)
                 if e.code not in used] if region else []
        if fresh:
            out.append(library.prescribe(fresh[0].code, today))
            break
    return tuple(out)
