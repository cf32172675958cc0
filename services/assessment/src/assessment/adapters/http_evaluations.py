"""Assessment's HTTP API for evaluations: open, record each part, complete, refer out, add
addenda, read, and print the patient's explanation (page and PDF)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from assessment.adapters.explanation import explanation_html, explanation_pdf
from assessment.adapters.intake import episodes
from assessment.adapters.projections import evaluations as evaluation_rows
from assessment.application import evaluations
from assessment.domain import evaluation, measures
from assessment.domain.errors import (
    EpisodeNotFoundError,
    EvaluationChangedError,
    EvaluationIncompleteError,
    EvaluationNotFoundError,
    UnknownMeasureError,
)
from assessment.domain import ruleset
from assessment.domain.episode import EpisodeThresholds
from assessment.domain.findings import FindingThresholds, ObjectiveFindings
from assessment.domain.measures import MeasureThresholds
from assessment.domain.history import RED_FLAGS, History, RedFlagScreen
from assessment.domain.reasoning import Reasoning, draft_explanation, suggest_drivers
from assessment.domain.ruleset import ChangeRuleSet, RuleSet
from kinetic_contracts.assessment.v1.events import Goal
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.commands import run_command
from kinetic_infra.event_store.decider import handle
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.event_store.model import EventContext
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import CurrentStaff, Staff
from kinetic_infra.http.headers import IdempotencyKey
from kinetic_infra.service.definition import Runtime

CLINICIANS = (Role.THERAPIST, Role.OPERATOR)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvaluationIn(Strict):
    episode_id: UUID
    kind: evaluation.Kind = "initial"


class GoalsIn(Strict):
    goals: list[Goal] = Field(min_length=1, max_length=10)


class MeasureIn(Strict):
    measure: str = Field(min_length=1, max_length=40, examples=["lefs"])
    answers: dict[str, int | None] = Field(
        description="Item id → answer (null: not answered); the score is computed")
    labels: dict[str, str] | None = Field(
        default=None, description="PSFS: item id → the activity the patient named")


class AnswersIn(Strict):
    answers: dict[str, int | None]
    labels: dict[str, str] | None = None


class ScorePreview(BaseModel):
    scores: dict[str, float]
    missing_items: list[str]


class ExplanationIn(Strict):
    text: str = Field(min_length=1, max_length=5000)


class AddendumIn(Strict):
    reason: str = Field(min_length=1, max_length=500, examples=["Corrected hip ER value"])
    text: str = Field(min_length=1, max_length=5000)


class Created(BaseModel):
    id: UUID


class RuleSetIn(Strict):
    measures: dict[str, MeasureThresholds] = Field(
        default_factory=dict, description='Overrides by measure ("lefs") or score '
                                          '("koos:koos_pain"); the rest keep the defaults',
        examples=[{"lefs": {"mcid": 9, "mdc": 9}}])
    findings: FindingThresholds = FindingThresholds()
    episode: EpisodeThresholds = Field(
        default_factory=EpisodeThresholds,
        description="CLINICAL.md §3.1's cut-offs for typing an episode chronic")


class EvaluationSummary(BaseModel):
    evaluation_id: UUID
    kind: str
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    appointment_id: UUID | None
    therapist_id: UUID | None
    baseline_evaluation_id: UUID | None
    status: str
    opened_at: datetime
    closed_at: datetime | None


class EvaluationOut(BaseModel):
    """The whole evaluation as recorded so far (scores and indices computed)."""

    evaluation_id: UUID
    kind: str
    status: str
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    baseline_evaluation_id: UUID | None
    history: History | None
    red_flags: RedFlagScreen | None
    goals: list[Goal]
    measures: list[dict[str, Any]]
    findings: dict[str, Any] | None
    reasoning: Reasoning | None
    explanation: str | None
    addenda: list[dict[str, Any]]
    completed_at: datetime | None
    version: int = Field(description="Send it back as If-Match to edit only this version")


# Two tabs editing one evaluation: the second save names the version it was looking at,
# and a save over a newer version is refused (409) instead of silently overwriting it.
IfMatch = Annotated[int | None, Header(alias="If-Match", ge=0,
                                       description="The evaluation's version as last read")]


def unchanged_since(version: int, if_match: int | None) -> None:
    if if_match is not None and if_match != version:
        raise EvaluationChangedError(
            f"the evaluation is at version {version}, you edited version {if_match}",
            version=version)


def as_out(state: evaluation.Evaluation) -> dict[str, Any]:
    o = state.opened
    return {
        "evaluation_id": o.evaluation_id, "kind": o.kind, "status": state.status,
        "episode_id": o.episode_id, "patient_id": o.patient_id, "location_id": o.location_id,
        "baseline_evaluation_id": o.baseline_evaluation_id, "history": state.history,
        "red_flags": state.screen, "goals": state.goals,
        "measures": [{"measure": m.measure, "version": m.version, "answers": m.answers,
                      "labels": m.labels, "scores": m.scores} for m in state.measures.values()],
        "findings": None if state.findings is None else {
            "recorded": state.findings.findings.model_dump(mode="json"),
            "indices": [i.model_dump(mode="json") for i in state.findings.indices]},
        "reasoning": state.reasoning, "explanation": state.explanation,
        "addenda": [{"addendum_id": a.addendum_id, "reason": a.reason, "text": a.text,
                     "by": a.by, "added_at": a.added_at} for a in state.addenda],
        "completed_at": state.completed_at}


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["evaluations"], route_class=AuditedRoute)
    db, store = runtime.db, runtime.store

    def context(principal: Principal, state: evaluation.Evaluation | None = None
                ) -> EventContext:
        command_id = new_id()
        return EventContext(tenant_id=principal.tenant_id, correlation_id=command_id,
                            causation_id=command_id,
                            location_id=state.opened.location_id if state else None,
                            episode_id=state.opened.episode_id if state else None)

    async def visible(conn: AsyncConnection, request: Request, principal: Principal,
                      evaluation_id: UUID, if_match: int | None = None
                      ) -> evaluation.Evaluation:
        return (await visible_at(conn, request, principal, evaluation_id, if_match))[0]

    async def visible_at(conn: AsyncConnection, request: Request, principal: Principal,
                         evaluation_id: UUID, if_match: int | None = None
                         ) -> tuple[evaluation.Evaluation, int]:
        """The evaluation and its version, if the caller is a clinician at its location
        (else 404), and unchanged since the caller read it when they say which version."""
        state, version = await evaluations.loaded(conn, store, evaluation_id,
                                                  principal.tenant_id)
        if not isinstance(state, evaluation.Evaluation) or not principal.can_at(
                state.opened.location_id, CLINICIANS):
            raise EvaluationNotFoundError(f"evaluation {evaluation_id} not found")
        note(request).patient_id = state.opened.patient_id
        note(request).location_id = state.opened.location_id
        note(request).resource_id = str(evaluation_id)
        unchanged_since(version, if_match)
        return state, version

    async def out(conn: AsyncConnection, principal: Principal, evaluation_id: UUID
                  ) -> dict[str, Any]:
        state, version = await evaluations.loaded(conn, store, evaluation_id,
                                                  principal.tenant_id)
        assert isinstance(state, evaluation.Evaluation)
        return {**as_out(state), "version": version}

    async def record(request: Request, principal: Principal, evaluation_id: UUID,
                     build: Callable[[datetime, RuleSet], evaluation.EvaluationCommand],
                     if_match: int | None = None) -> dict[str, Any]:
        async def work(conn: AsyncConnection) -> dict[str, Any]:
            state = await visible(conn, request, principal, evaluation_id, if_match)
            rules = await evaluations.rules_of(conn, store, principal.tenant_id)
            await evaluations.run(conn, store, build(datetime.now(UTC), rules),
                                  context(principal, state))
            return {"out": await out(conn, principal, evaluation_id)}

        return (await run_command(db, work, tenant_id=principal.tenant_id))["out"]

    @api.post("/evaluations", status_code=status.HTTP_201_CREATED, response_model=Created,
              summary="Open an evaluation draft for an episode (therapist)",
              openapi_extra=audited("create", "evaluation"))
    async def open_evaluation(request: Request, body: EvaluationIn,
                              principal: Staff(*CLINICIANS)) -> Created:
        async def work(conn: AsyncConnection) -> dict[str, str]:
            row = (await conn.execute(select(episodes.c.location_id, episodes.c.patient_id)
                                      .where(episodes.c.episode_id == body.episode_id))).first()
            if row is None or not principal.can_at(row.location_id, CLINICIANS):
                raise EpisodeNotFoundError(f"episode {body.episode_id} not found")
            note(request).patient_id, note(request).location_id = row.patient_id, row.location_id
            opened = await evaluations.open_draft(
                conn, store, evaluation_id=new_id(), kind=body.kind, episode_id=body.episode_id,
                context=context(principal))
            return {"id": str(opened)}

        created = Created(**await run_command(db, work, tenant_id=principal.tenant_id))
        note(request).resource_id = str(created.id)
        return created

    @api.get("/evaluations", response_model=list[EvaluationSummary],
             summary="Evaluations of an episode, newest first",
             openapi_extra=audited("list", "evaluation"))
    async def list_evaluations(request: Request, episode_id: UUID,
                               principal: Staff(*CLINICIANS)) -> list[dict[str, Any]]:
        visible_at = principal.locations_for(CLINICIANS)
        query = (select(evaluation_rows).where(evaluation_rows.c.episode_id == episode_id)
                 .order_by(evaluation_rows.c.opened_at.desc()))
        if visible_at is not None:
            query = query.where(evaluation_rows.c.location_id.in_(visible_at))
        async with db.read(principal.tenant_id) as conn:
            rows = [dict(r) for r in (await conn.execute(query)).mappings()]
        if rows:
            note(request).patient_id = rows[0]["patient_id"]
        return rows

    @api.get("/evaluations/{evaluation_id}", response_model=EvaluationOut,
             summary="The whole evaluation", openapi_extra=audited("read", "evaluation"))
    async def get_evaluation(request: Request, evaluation_id: UUID,
                             principal: Staff(*CLINICIANS)) -> dict[str, Any]:
        async with db.read(principal.tenant_id) as conn:
            state, version = await visible_at(conn, request, principal, evaluation_id)
        return {**as_out(state), "version": version}

    def part(path: str, summary: str, body_type: type[BaseModel],
             build: Callable[[UUID, datetime, Any, RuleSet], evaluation.EvaluationCommand],
             method: str = "PUT", action: str = "update") -> None:
        async def endpoint(request: Request, evaluation_id: UUID, body: Any,
                           principal: Staff(*CLINICIANS),  # type: ignore[valid-type]
                           if_match: IfMatch = None) -> dict[str, Any]:
            return await record(request, principal, evaluation_id,
                                lambda now, rules: build(evaluation_id, now, body, rules),
                                if_match)

        endpoint.__annotations__["body"] = body_type
        api.add_api_route(f"/evaluations/{{evaluation_id}}/{path}", endpoint, methods=[method],
                          response_model=EvaluationOut, summary=summary,
                          openapi_extra=audited(action, "evaluation"), name=f"record_{path}")

    part("history", "Record the history (onset, aggravating and easing, previous treatment, "
         "training or work load)", History,
         lambda e, now, b, _r: evaluation.RecordHistory(evaluation_id=e, now=now, history=b))
    part("red-flags", "Record the red-flag screening (every question answered)", RedFlagScreen,
         lambda e, now, b, _r: evaluation.ScreenRedFlags(evaluation_id=e, now=now, screen=b))
    part("goals", "Record the patient's goals: return to what, at what level, by when", GoalsIn,
         lambda e, now, b, _r: evaluation.RecordGoals(evaluation_id=e, now=now, goals=b.goals))
    part("measures", "Score an outcome measure from its item answers", MeasureIn,
         lambda e, now, b, _r: evaluation.RecordMeasure(evaluation_id=e, now=now,
                                                    measure=b.measure, answers=b.answers,
                                                    labels=b.labels),
         method="POST", action="measure")
    part("findings", "Record the objective findings (indices are computed)", ObjectiveFindings,
         lambda e, now, b, rules: evaluation.RecordFindings(evaluation_id=e, now=now,
                                                                findings=b, rules=rules))
    part("reasoning", "Record the clinical reasoning: symptom sites, drivers with their "
         "rationale and findings, working diagnosis, episode type", Reasoning,
         lambda e, now, b, _r: evaluation.RecordReasoning(evaluation_id=e, now=now, reasoning=b))
    part("explanation", "Write the patient's plain-language explanation", ExplanationIn,
         lambda e, now, b, _r: evaluation.WriteExplanation(evaluation_id=e, now=now, text=b.text))

    async def close(request: Request, principal: Principal, evaluation_id: UUID,
                    if_match: int | None, closed_as: str,
                    act: Callable[[AsyncConnection, evaluation.Evaluation], Awaitable[None]]
                    ) -> dict[str, Any]:
        """Complete or refer out. A repeat of a close that already happened (a double click, a
        retry after a timeout) answers as the first one did, whatever version it names: that
        close is what moved the version on. A draft is closed only at the version named, so a
        stale tab never closes content it has not seen; an evaluation closed the other way
        stays as it is (409 evaluation-closed, whatever the version named)."""
        async def work(conn: AsyncConnection) -> dict[str, Any]:
            state, version = await visible_at(conn, request, principal, evaluation_id)
            if state.status == "draft":
                unchanged_since(version, if_match)
            if state.status != closed_as:
                await act(conn, state)  # closed the other way: refused (evaluation-closed)
            return {"out": await out(conn, principal, evaluation_id)}

        return (await run_command(db, work, tenant_id=principal.tenant_id))["out"]

    @api.post("/evaluations/{evaluation_id}/complete", response_model=EvaluationOut,
              summary="Complete: publishes the evaluation (or reassessment) and its measures",
              description="With `If-Match`, refused (409 `/problems/evaluation-changed`) "
                          "if the evaluation changed since that version. Completing again "
                          "answers with the completed evaluation and publishes nothing more; "
                          "a referred-out evaluation is not completed (409 "
                          "`/problems/evaluation-closed`). An initial evaluation's completion "
                          "also opens the draft of a reassessment booked before it.",
              openapi_extra=audited("complete", "evaluation"))
    async def complete(request: Request, evaluation_id: UUID, principal: Staff(*CLINICIANS),
                       if_match: IfMatch = None) -> dict[str, Any]:
        async def act(conn: AsyncConnection, state: evaluation.Evaluation) -> None:
            await evaluations.complete(conn, store, evaluation_id, context(principal, state))

        return await close(request, principal, evaluation_id, if_match, "completed", act)

    @api.post("/evaluations/{evaluation_id}/refer-out", response_model=EvaluationOut,
              summary="Refer the patient out after a positive red flag",
              description="With `If-Match`, refused (409 `/problems/evaluation-changed`) "
                          "if the evaluation changed since that version. Referring out again "
                          "answers with the referred-out evaluation; a completed evaluation "
                          "is not referred out (409 `/problems/evaluation-closed`).",
              openapi_extra=audited("refer-out", "evaluation"))
    async def refer_out(request: Request, evaluation_id: UUID, principal: Staff(*CLINICIANS),
                        if_match: IfMatch = None) -> dict[str, Any]:
        async def act(conn: AsyncConnection, state: evaluation.Evaluation) -> None:
            await evaluations.run(conn, store, evaluation.ReferOut(
                evaluation_id=evaluation_id, now=datetime.now(UTC)), context(principal, state))

        return await close(request, principal, evaluation_id, if_match, "referred_out", act)

    @api.post("/evaluations/{evaluation_id}/addenda", response_model=EvaluationOut,
              status_code=status.HTTP_201_CREATED,
              summary="Add an addendum (with a reason) to a completed evaluation",
              openapi_extra=audited("addendum", "evaluation"))
    async def addendum(request: Request, evaluation_id: UUID, body: AddendumIn,
                       principal: Staff(*CLINICIANS), if_match: IfMatch = None,
                       idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        addendum_id = (evaluations.addendum_id_for(evaluation_id, idempotency_key)
                       if idempotency_key else new_id())

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            state, version = await visible_at(conn, request, principal, evaluation_id)
            # A retry of an addendum already added answers as the first request did: the
            # version it names is stale only because that first request moved it on.
            if not state.has_addendum(addendum_id):
                unchanged_since(version, if_match)
            await evaluations.run(conn, store, evaluation.AddAddendum(
                evaluation_id=evaluation_id, now=datetime.now(UTC), addendum_id=addendum_id,
                reason=body.reason, text=body.text, by=principal.name),
                context(principal, state))
            return {"out": await out(conn, principal, evaluation_id)}

        return (await run_command(db, work, tenant_id=principal.tenant_id))["out"]

    @api.get("/evaluations/{evaluation_id}/explanation/draft", response_model=ExplanationIn,
             summary="A first draft of the explanation from the site, drivers and findings",
             openapi_extra=audited("read", "evaluation"))
    async def explanation_draft(request: Request, evaluation_id: UUID,
                                principal: Staff(*CLINICIANS)) -> ExplanationIn:
        async with db.read(principal.tenant_id) as conn:
            state = await visible(conn, request, principal, evaluation_id)
        if state.reasoning is None:
            raise EvaluationIncompleteError(
                "record the clinical reasoning first: the draft is drawn from it")
        indices = state.findings.indices if state.findings else []
        deficits = {i.finding_id: 100 - i.value for i in indices
                    if i.index == "lsi_pct" and i.value < 100}
        return ExplanationIn(text=draft_explanation(state.reasoning, deficits))

    @api.get("/evaluations/{evaluation_id}/explanation", response_class=HTMLResponse,
             summary="The explanation as a page the patient takes home",
             openapi_extra=audited("print", "evaluation"))
    async def explanation_page(request: Request, evaluation_id: UUID,
                               principal: Staff(*CLINICIANS)) -> Response:
        async with db.read(principal.tenant_id) as conn:
            state = await visible(conn, request, principal, evaluation_id)
        return HTMLResponse(explanation_html(state))

    @api.get("/evaluations/{evaluation_id}/explanation.pdf",
             response_class=Response, summary="The explanation as a PDF",
             responses={200: {"content": {"application/pdf": {}}}},
             openapi_extra=audited("print", "evaluation"))
    async def explanation_document(request: Request, evaluation_id: UUID,
                                   principal: Staff(*CLINICIANS)) -> Response:
        async with db.read(principal.tenant_id) as conn:
            state = await visible(conn, request, principal, evaluation_id)
        return Response(explanation_pdf(state), media_type="application/pdf")

    @api.get("/ruleset", response_model=RuleSet,
             summary="The organization's clinical numbers (MCID/MDC overrides, finding "
                     "thresholds) and their version")
    async def get_rules(principal: CurrentStaff) -> RuleSet:
        async with db.read(principal.tenant_id) as conn:
            return await evaluations.rules_of(conn, store, principal.tenant_id)

    @api.put("/ruleset", response_model=RuleSet,
             summary="Change the organization's clinical numbers (operator): a new version")
    async def change_rules(body: RuleSetIn, principal: Staff(Role.OPERATOR)) -> RuleSet:
        async def work(conn: AsyncConnection) -> dict[str, Any]:
            tenant = principal.tenant_id
            await handle(conn, store, evaluations.ruleset_stream(tenant), ruleset,
                         ChangeRuleSet(organization_id=str(tenant), measures=body.measures,
                                       findings=body.findings, episode=body.episode,
                                       changed_by=principal.name, now=datetime.now(UTC)),
                         tenant_id=tenant, context=context(principal))
            return {"rules": (await evaluations.rules_of(conn, store, tenant)).model_dump()}

        return RuleSet(**(await run_command(db, work, tenant_id=principal.tenant_id))["rules"])

    @api.post("/measures/{measure}/score", response_model=ScorePreview,
              summary="Score item answers without storing them (live scoring while typing)")
    async def preview(measure: str, body: AnswersIn, principal: CurrentStaff) -> ScorePreview:
        definition = measures.CATALOG.get(measure)
        if definition is None:
            raise UnknownMeasureError(f"no measure {measure!r} in the catalog", measure=measure)
        scored = measures.score(definition, body.answers, body.labels)
        return ScorePreview(scores=dict(scored.values), missing_items=list(scored.missing_items))

    @api.get("/measures", summary="The outcome-measure catalog")
    async def catalog(principal: CurrentStaff) -> list[dict[str, Any]]:
        return [d.model_dump(mode="json") for d in measures.CATALOG.values()]

    @api.get("/red-flags", summary="The red-flag screening questions")
    async def red_flags(principal: CurrentStaff) -> dict[str, str]:
        return RED_FLAGS

    @api.get("/drivers", summary="Drivers typical for a symptom site (CLINICAL.md §4)")
    async def drivers(symptom_site: str, principal: CurrentStaff) -> list[dict[str, Any]]:
        return [d.model_dump() for d in suggest_drivers(symptom_site)]

    return api
