"""The outcome-measure catalog (CLINICAL.md §1) as data.

Item labels are short paraphrases for the clinician's screen, never the instruments' wording
(several are copyrighted). Answers are the item's points as the published scoring assigns
them (a KOOS box scores 0 = none … 4 = extreme; a TSK-17 box is the printed 1–4 and the
reverse-scored items are turned round here). MCID/MDC are the defaults CLINICAL.md §1
quotes; an organization overrides them with its own ``MeasureThresholds``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import ceil
from types import MappingProxyType

from assessment.domain.measures.definition import (
    Cutoff,
    Item,
    MeasureDefinition,
    MeasureThresholds,
    ScoreSpec,
)
from assessment.domain.measures.errors import UnknownScoreError

V1 = "1"


def _numbered(prefix: str, labels: Sequence[str], low: int, high: int,
              reverse: frozenset[int] = frozenset(), patient_named: bool = False,
              ) -> tuple[Item, ...]:
    return tuple(Item(id=f"{prefix}_{n:02d}", label=label, low=low, high=high,
                      reverse=n in reverse, patient_named=patient_named)
                 for n, label in enumerate(labels, start=1))


def _coded(prefix: str, labels: Sequence[str], low: int, high: int) -> tuple[Item, ...]:
    # KOOS and SPADI number items within each subscale (P1, S1, A1…): keep their codes.
    return tuple(Item(id=f"{prefix}{n}", label=label, low=low, high=high)
                 for n, label in enumerate(labels, start=1))


def _ids(items: Sequence[Item]) -> tuple[str, ...]:
    return tuple(i.id for i in items)


# -- single-item and sum scores ---------------------------------------------------------------

NPRS = MeasureDefinition(
    code="nprs", name="Numeric Pain Rating Scale", version=V1, region="any",
    use="pain intensity", direction="lower_better",
    items=(Item(id="nprs_01", label="Pain (0 = none, 10 = worst imaginable)", low=0, high=10),),
    scores=(ScoreSpec(code="nprs", label="Pain", unit="points", items=("nprs_01",),
                      rule="sum", low=0, high=10, decimals=0, min_answered=1,
                      thresholds=MeasureThresholds(mcid=2, mdc=1.8, mcid_pct=30)),),
    primary_score="nprs",
    missing_rule="The single item must be answered.",
    notes="MCID 2 points or 30% (S1, S3); larger when baseline pain is high. MDC 1.8 is "
          "from back pain.",
)

_LEFS = _numbered("lefs", [
    "Usual work, housework or school", "Usual hobbies, recreation or sport",
    "Getting into or out of the bath", "Walking between rooms", "Putting on shoes or socks",
    "Squatting", "Lifting a bag of groceries from the floor", "Light activities at home",
    "Heavy activities at home", "Getting into or out of a car", "Walking 2 blocks",
    "Walking a mile", "Up or down 10 stairs", "Standing 1 hour", "Sitting 1 hour",
    "Running on even ground", "Running on uneven ground", "Sharp turns while running fast",
    "Hopping", "Rolling over in bed"], low=0, high=4)

LEFS = MeasureDefinition(
    code="lefs", name="Lower Extremity Functional Scale", version=V1, region="lower_limb",
    use="function", direction="higher_better", items=_LEFS,
    scores=(ScoreSpec(code="lefs", label="LEFS", unit="points", items=_ids(_LEFS), rule="sum",
                      low=0, high=80, decimals=0, min_answered=20,
                      thresholds=MeasureThresholds(mcid=9, mdc=9)),),
    primary_score="lefs",
    # Binkley 1999 asks for an answer to every activity and scores the plain sum; it gives
    # no pro-rating, and a sum with a gap reads as worse function than the patient has.
    missing_rule="All 20 items must be answered (the published form scores the plain sum "
                 "and gives no rule for gaps).",
    notes="MCID 9 (range 9–16 by anchor, S4); MDC 9 (90%), single-score error ±5.3 (S5).",
)

_VISA_SPORT = (0, 4, 7, 10)  # not at all / modified / full but below level / same or higher
# Question 8: the patient answers one of three parts, by whether pain stops them; each part
# has its own points for the same time bands (nil, 1–10, 11–20, 21–30, >30 minutes).
_VISA_8 = {"a": ("no pain while loading", (0, 7, 14, 21, 30)),
           "b": ("some pain, but completes", (0, 4, 10, 14, 20)),
           "c": ("pain stops the activity", (0, 2, 5, 7, 10))}


def _visa(prefix: str, first_six: Sequence[str]) -> tuple[Item, ...]:
    return (*_numbered(prefix, first_six, low=0, high=10),
            Item(id=f"{prefix}_07", label="Sport or physical activity now", low=0, high=10,
                 choices=_VISA_SPORT),
            *(Item(id=f"{prefix}_08{part}", label=f"Time loading in sport: {label} (8{part})",
                   low=0, high=max(points), choices=points, group=f"{prefix}_08")
              for part, (label, points) in _VISA_8.items()))


_VISA_A = _visa("visa_a", [
    "Morning stiffness (minutes)", "Pain stretching the Achilles", "Pain after a 30 min walk",
    "Pain walking downstairs", "Pain with 10 single-leg heel raises",
    "Single-leg hops without pain"])

VISA_A = MeasureDefinition(
    code="visa_a", name="Victorian Institute of Sport Assessment – Achilles", version=V1,
    region="achilles", use="tendinopathy severity", direction="higher_better", items=_VISA_A,
    scores=(ScoreSpec(code="visa_a", label="VISA-A", unit="points", items=_ids(_VISA_A),
                      rule="sum", low=0, high=100, decimals=0, min_answered=8,
                      thresholds=MeasureThresholds(mcid=14)),),
    primary_score="visa_a",
    missing_rule="All 8 questions must be answered; question 8 by exactly one of its parts "
                 "A, B or C (Robinson 2001 scores the plain sum).",
    notes="MCID 14 at 12 weeks, 7 at 24 weeks (S12): the default is the 12-week value. "
          "Healthy ≥96 (S11). No MDC published here.",
)

_VISA_P = _visa("visa_p", [
    "Sitting without pain (minutes)", "Pain walking downstairs",
    "Pain with full knee extension, unloaded", "Pain in a full weight-bearing lunge",
    "Problems squatting", "Pain with 10 single-leg hops"])

VISA_P = MeasureDefinition(
    code="visa_p", name="Victorian Institute of Sport Assessment – Patella", version=V1,
    region="patellar_tendon", use="tendinopathy severity", direction="higher_better",
    items=_VISA_P,
    # The 15–27% relative change S13 also reports is a range, so no relative MCID default.
    scores=(ScoreSpec(code="visa_p", label="VISA-P", unit="points", items=_ids(_VISA_P),
                      rule="sum", low=0, high=100, decimals=0, min_answered=8,
                      thresholds=MeasureThresholds(mcid=13)),),
    primary_score="visa_p",
    missing_rule="All 8 questions must be answered; question 8 by exactly one of its parts "
                 "A, B or C (Visentini 1998 scores the plain sum).",
    notes="MCID 13, or 15–27% relative change (S13, athletes, conservative care).",
)

_TSK = _numbered("tsk17", [
    "Afraid of injury if I exercise", "Pain would rise if I pushed through it",
    "Body tells me something is dangerously wrong", "Exercise might ease my pain",
    "People don't take my condition seriously", "My body is at risk for life",
    "Pain means I have injured my body", "Aggravating pain need not mean danger",
    "Afraid I might injure myself by accident", "Avoiding unneeded movement is safest",
    "So much pain means something dangerous", "Better off physically active despite pain",
    "Pain tells me when to stop exercising", "Not safe to be active with my condition",
    "Can't do what others do: too easily injured", "Painful need not mean dangerous",
    "No one should exercise when in pain"], low=1, high=4,
    reverse=frozenset({4, 8, 12, 16}))

TSK17 = MeasureDefinition(
    code="tsk17", name="Tampa Scale of Kinesiophobia (17 items)", version=V1,
    region="any", use="fear of movement (screening)", direction="lower_better", items=_TSK,
    scores=(ScoreSpec(code="tsk17", label="TSK-17", unit="points", items=_ids(_TSK),
                      rule="sum", low=17, high=68, decimals=0, min_answered=17,
                      cutoffs=(Cutoff(code="high_kinesiophobia", label="High kinesiophobia",
                                      op=">", threshold=37),)),),
    primary_score="tsk17",
    # The >37 cut-off is defined on a complete total; an imputed item could move a patient
    # across it, and no pro-rating rule is published.
    missing_rule="All 17 items must be answered (no published pro-rating; the >37 cut-off "
                 "is defined on the full total).",
    notes="No robust MCID (S16): a screening flag, >37 = high kinesiophobia (tsk_high).",
)

GROC = MeasureDefinition(
    code="groc", name="Global Rating of Change", version=V1, region="any",
    use="anchor: the patient's rating of change", direction="higher_better",
    items=(Item(id="groc_01", label="Change since treatment began (−7 … +7)", low=-7, high=7),),
    scores=(ScoreSpec(code="groc", label="GROC", unit="points", items=("groc_01",),
                      rule="sum", low=-7, high=7, decimals=0, min_answered=1,
                      cutoffs=(Cutoff(code="important_improvement", op=">=", threshold=3,
                                      label="Important improvement (somewhat better)"),
                               Cutoff(code="moderate_improvement", op=">=", threshold=4,
                                      label="Moderate improvement"),
                               Cutoff(code="large_improvement", op=">=", threshold=6,
                                      label="Large improvement"))),),
    primary_score="groc",
    missing_rule="The single item must be answered.",
    # It is itself a rating of change, so a baseline comparison means nothing.
    compare_to_baseline=False,
    notes="An anchor, not a primary measure; subject to recall bias (S15).",
)

# -- percentage scores --------------------------------------------------------------------------

_ODI = _numbered("odi", [
    "Pain intensity", "Personal care", "Lifting", "Walking", "Sitting", "Standing",
    "Sleeping", "Sex life", "Social life", "Travelling"], low=0, high=5)

ODI = MeasureDefinition(
    code="odi", name="Oswestry Disability Index", version=V1, region="low_back",
    use="disability", direction="lower_better", items=_ODI,
    scores=(ScoreSpec(code="odi", label="ODI", unit="%", items=_ids(_ODI), rule="percent",
                      low=0, high=100, decimals=1, min_answered=8,
                      thresholds=MeasureThresholds(mcid=10, mdc=10, mcid_pct=30)),),
    primary_score="odi",
    # Fairbank & Pynsent 2000: a missed or not-applicable section comes off the total
    # possible score (16 / 45 × 100 with one missing; their example prints 35.5, truncated,
    # where rounding gives 35.6). Their example covers one section; we allow up to two
    # (a fifth of the questionnaire) and refuse three or more.
    missing_rule="Up to 2 of 10 sections may be unanswered: score = total / (5 × answered "
                 "sections) × 100 (Fairbank & Pynsent 2000).",
    notes="MCID 10 points or 30% (S3); 12 in an outpatient PT cohort (S4). MDC ≈10 (90%).",
)

_NDI = _numbered("ndi", [
    "Pain intensity", "Personal care", "Lifting", "Reading", "Headaches", "Concentration",
    "Work", "Driving", "Sleeping", "Recreation"], low=0, high=5)

NDI = MeasureDefinition(
    code="ndi", name="Neck Disability Index", version=V1, region="neck", use="disability",
    direction="lower_better", items=_NDI,
    scores=(ScoreSpec(code="ndi", label="NDI (0–50)", unit="points", items=_ids(_NDI),
                      rule="prorated_sum", low=0, high=50, decimals=1, min_answered=8,
                      thresholds=MeasureThresholds(mcid=7.5, mdc=10.2)),
            ScoreSpec(code="ndi_pct", label="NDI (%)", unit="%", items=_ids(_NDI),
                      rule="percent", low=0, high=100, decimals=1, min_answered=8,
                      thresholds=MeasureThresholds(mcid=15, mdc=20.4))),
    # S6's MCID and MDC are on the 0–50 scale, so that is the one reported; the % scale is
    # the same total × 2 and is kept beside it so a record never has to guess the scale.
    primary_score="ndi",
    # Vernon & Mior's form: a missed section comes off the total possible score (out of 45
    # with one missing), which is the mean of the answered sections × 10. As for the ODI it
    # derives from, up to two sections may be missing (driving is often not applicable).
    missing_rule="Up to 2 of 10 sections may be unanswered: the 0–50 score is pro-rated "
                 "(total × 10 / answered), the % score is total / (5 × answered) × 100.",
    notes="MCID 7.5/50 (15%), MDC 10.2/50 (S6): the MDC exceeds the MCID, so a change must "
          "reach the MDC to count (the source advises 10/50).",
)

_QUICKDASH = _numbered("quickdash", [
    "Open a tight or new jar", "Heavy household chores", "Carry a shopping bag or briefcase",
    "Wash your back", "Cut food with a knife", "Recreation with force through the arm",
    "Interference with social activities", "Limited in work or daily activities",
    "Arm, shoulder or hand pain", "Tingling (pins and needles)",
    "Difficulty sleeping because of pain"], low=1, high=5)

QUICKDASH = MeasureDefinition(
    code="quickdash", name="QuickDASH", version=V1, region="upper_limb",
    use="disability", direction="lower_better", items=_QUICKDASH,
    # ((sum / n) − 1) × 25 is the percent rule on items scored 1–5.
    scores=(ScoreSpec(code="quickdash", label="QuickDASH", unit="points",
                      items=_ids(_QUICKDASH), rule="percent", low=0, high=100, decimals=1,
                      min_answered=10, thresholds=MeasureThresholds(mcid=14, mdc=12.85)),),
    primary_score="quickdash",
    missing_rule="At least 10 of 11 items must be answered: score = ((sum / n) − 1) × 25 "
                 "over the n answered items (QuickDASH scoring instructions).",
    notes="MCID ≈8–16 (S7–S9): default 14; 11 for shoulder (then the MDC 12.85 governs). "
          "The optional work and sports modules are not scored here.",
)

_SPADI_PAIN = _coded("spadi_p", [
    "Pain at its worst", "Pain lying on the involved side", "Pain reaching a high shelf",
    "Pain touching the back of the neck", "Pain pushing with the involved arm"],
    low=0, high=10)
_SPADI_DISABILITY = _coded("spadi_d", [
    "Washing hair", "Washing back", "Putting on an undershirt or jumper",
    "Putting on a shirt that buttons down the front", "Putting on pants",
    "Placing an object on a high shelf", "Carrying a heavy object (10 lb / 4.5 kg)",
    "Removing something from a back pocket"], low=0, high=10)

SPADI = MeasureDefinition(
    code="spadi", name="Shoulder Pain and Disability Index", version=V1, region="shoulder",
    use="pain and disability", direction="lower_better",
    items=(*_SPADI_PAIN, *_SPADI_DISABILITY),
    scores=(ScoreSpec(code="spadi_pain", label="SPADI pain", unit="%",
                      items=_ids(_SPADI_PAIN), rule="percent", low=0, high=100, decimals=1,
                      min_answered=3),
            ScoreSpec(code="spadi_disability", label="SPADI disability", unit="%",
                      items=_ids(_SPADI_DISABILITY), rule="percent", low=0, high=100,
                      decimals=1, min_answered=6),
            # The total is every answered item over its possible points (130 when whole).
            ScoreSpec(code="spadi", label="SPADI total", unit="%",
                      items=_ids(_SPADI_PAIN) + _ids(_SPADI_DISABILITY), rule="percent",
                      low=0, high=100, decimals=1, min_answered=9,
                      requires=("spadi_pain", "spadi_disability"),
                      thresholds=MeasureThresholds(mcid=13))),
    primary_score="spadi",
    missing_rule="At most 2 items missing in each subscale (pain 5, disability 8); each "
                 "subscale and the total are scored over the answered items' possible "
                 "points (Roach 1991; NRS version, Williams 1995).",
    notes="MCID 8–13 (S14, not re-verified): the default is the upper end, 13. No MDC in "
          "CLINICAL.md.",
)

# -- KOOS: five subscales, each scored and tracked on its own ----------------------------------

_KOOS_SUBSCALES: tuple[tuple[str, str, str, float, Sequence[str]], ...] = (
    # (code, label, item prefix, MCID (S10, non-surgical knee OA), item labels)
    ("koos_pain", "KOOS Pain", "koos_p", 11.3, [
        "How often knee pain", "Pain twisting or pivoting", "Pain straightening fully",
        "Pain bending fully", "Pain walking on flat ground", "Pain on stairs",
        "Pain at night in bed", "Pain sitting or lying", "Pain standing upright"]),
    ("koos_symptoms", "KOOS Symptoms", "koos_s", 12.1, [
        "Swelling", "Grinding or clicking", "Catching or hanging up", "Straightening fully",
        "Bending fully", "Stiffness on waking", "Stiffness later in the day"]),
    ("koos_adl", "KOOS ADL", "koos_a", 10.2, [
        "Descending stairs", "Ascending stairs", "Rising from sitting", "Standing",
        "Bending to the floor", "Walking on flat ground", "Getting in or out of a car",
        "Going shopping", "Putting on socks", "Rising from bed", "Taking off socks",
        "Lying in bed", "Getting in or out of the bath", "Sitting",
        "Getting on or off the toilet", "Heavy domestic duties", "Light domestic duties"]),
    ("koos_sport_rec", "KOOS Sport/Rec", "koos_sp", 15.5, [
        "Squatting", "Running", "Jumping", "Twisting or pivoting on the knee", "Kneeling"]),
    ("koos_qol", "KOOS QoL", "koos_q", 13.2, [
        "How often aware of the knee", "Lifestyle modified for the knee",
        "Trouble with lack of confidence in the knee", "Overall difficulty with the knee"]),
)
_KOOS_ITEMS = {code: _coded(prefix, labels, low=0, high=4)
               for code, _, prefix, _, labels in _KOOS_SUBSCALES}

KOOS = MeasureDefinition(
    code="koos", name="Knee injury and Osteoarthritis Outcome Score", version=V1,
    region="knee", use="pain, symptoms and function", direction="higher_better",
    items=tuple(i for items in _KOOS_ITEMS.values() for i in items),
    # KOOS Scoring 2012: a subscale needs at least half its items (Pain 5, Symptoms 4,
    # ADL 9, Sport/Rec 3, QoL 2); subscales are independent and each may be reported alone.
    scores=tuple(ScoreSpec(code=code, label=label, unit="points",
                           items=_ids(_KOOS_ITEMS[code]), rule="inverted_percent",
                           low=0, high=100, decimals=1,
                           min_answered=ceil(len(_KOOS_ITEMS[code]) / 2),
                           thresholds=MeasureThresholds(mcid=mcid))
                 for code, label, _, mcid, _ in _KOOS_SUBSCALES),
    primary_score=None,
    missing_rule="Each subscale needs at least half its items answered (KOOS Scoring 2012) "
                 "and is scored 100 − mean × 25 over those; a subscale short of that is "
                 "not scored while the others still are.",
    notes="Subscale MCIDs from non-surgical knee OA (S10). MDC is 11–20 at the individual "
          "level with no per-subscale figure, so none is set: the clinic sets its own.",
)

# -- PSFS: the patient's own activities -----------------------------------------------------------

_PSFS = _numbered("psfs", [f"Activity {n}" for n in range(1, 6)], low=0, high=10,
                  patient_named=True)

PSFS = MeasureDefinition(
    code="psfs", name="Patient-Specific Functional Scale", version=V1, region="any",
    use="the patient's chosen activities", direction="higher_better", items=_PSFS,
    scores=(ScoreSpec(code="psfs", label="PSFS (mean)", unit="points", items=_ids(_PSFS),
                      rule="mean", low=0, high=10, decimals=1, min_answered=3,
                      thresholds=MeasureThresholds(mcid=2, mdc=2)),
            # Each activity is also tracked alone (MCID 3 for a single item; discharge asks
            # every item ≥ 8). An unused slot simply has no score.
            *(ScoreSpec(code=i.id, label=f"PSFS activity {n}", unit="points",
                        items=(i.id,), rule="sum", low=0, high=10, decimals=0,
                        min_answered=1, required=False,
                        thresholds=MeasureThresholds(mcid=3))
              for n, i in enumerate(_PSFS, start=1))),
    primary_score="psfs",
    missing_rule="The patient rates 3 to 5 activities of their choosing, each named; the "
                 "score is the mean of those rated.",
    notes="MCID 2 (mean) and 3 (single item), MDC ≈2 (S4, S9). The same slot must hold the "
          "same activity at every measurement.",
)

CATALOG: Mapping[str, MeasureDefinition] = MappingProxyType({m.code: m for m in (
    NPRS, LEFS, ODI, NDI, QUICKDASH, PSFS, KOOS, VISA_A, VISA_P, SPADI, GROC, TSK17)})

# Scores that are one total on different scales: the NDI's 0–50 and its 0–100 % (the same
# total × 2). A threshold set for one holds for the others, rescaled by the ratio of their
# ranges (each starts at 0), so one change is never read two ways.
SAME_TOTAL: Mapping[str, tuple[frozenset[str], ...]] = MappingProxyType({
    "ndi": (frozenset({"ndi", "ndi_pct"}),)})


def _check_same_total() -> None:
    for code, groups in SAME_TOTAL.items():
        for group in groups:
            items: set[frozenset[str]] = set()
            for score in group:
                spec = CATALOG[code].score_spec(score)
                if spec is None or spec.low != 0:
                    raise ValueError(f"{code}: {score} is not a score counted from 0")
                items.add(frozenset(spec.items))
            if len(items) != 1:
                raise ValueError(f"{code}: {sorted(group)} are not one total on two scales")


_check_same_total()


def same_total(definition: MeasureDefinition, score: str) -> frozenset[str]:
    """The scores that are ``score``'s total on another scale, ``score`` included."""
    return next((g for g in SAME_TOTAL.get(definition.code, ()) if score in g),
                frozenset({score}))


def thresholds_for(definition: MeasureDefinition,
                   score: str | None = None) -> MeasureThresholds | None:
    """The catalog's default thresholds for one of the measure's scores (its primary score
    when none is named); None where the literature gives no MCID (TSK-17, GROC)."""
    code = score or definition.primary_score
    spec = definition.score_spec(code) if code else None
    if spec is None:
        raise UnknownScoreError(f"{definition.code} reports no score {code!r}",
                                measure=definition.code, score=code)
    return spec.thresholds
