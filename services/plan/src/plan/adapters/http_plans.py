"""Plan's HTTP API for an episode's care plan: read and edit it, activate it, log sessions
and decide their progression, record results, answer a due reassessment, move between
stages, discharge, and print the patient's home program. Therapists at the episode's
location and operators; every call audited; every change in one transaction."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Header, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts.problems import ConflictError, NotFoundError, PreconditionRequiredError
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.commands import run_command
from kinetic_infra.event_store.decider import handle
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import CurrentStaff, Staff
from kinetic_infra.service.definition import Runtime
from plan.adapters.home_program import home_program_html, home_program_pdf
from plan.adapters.library import exercises as exercise_rows
from plan.adapters.sessions import sessions
from plan.application import plans
from plan.domain import discharge, plan, progression, rules
from plan.domain.content import PlanContent
from plan.domain.exercises import Exercise
from plan.domain.prescription import Prescription
from plan.domain.rules import PlanRules
from plan.domain.stalls import ReassessmentDecision

CLINICIANS = (Role.THERAPIST, Role.OPERATOR)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanChangedError(ConflictError):
    type_slug = "plan-changed"
    title = "The plan changed since you read it"


class SessionNotFoundError(NotFoundError):
    type_slug = "session-not-found"
    title = "No such completed session in this episode"


class PlanEditIn(Strict):
    content: PlanContent
    reason: str = Field(default="", max_length=2000,
                        description="Why the active plan is revised (kept with the revision)")


class NextMorningIn(Strict):
    settled: bool = Field(description="Pain back to baseline by the next morning")


class ProgressionIn(Strict):
    changes: list[Prescription] = Field(
        default_factory=list, max_length=50,
        description="Exercises whose next parameters you set otherwise; the rest take the "
                    "proposal")


class TaskResultIn(Strict):
    criterion_id: str = Field(min_length=1, max_length=100)
    value: float = Field(allow_inf_nan=False,
                         description="The number the criterion reads; a done/not-done task "
                                     "is 1 or 0")


class ReassessmentIn(Strict):
    outcome: ReassessmentDecision
    free_text: str = Field(min_length=1, max_length=2000)


class AdvanceIn(Strict):
    from_stage: str | None = Field(
        default=None, max_length=100,
        description="The stage you confirm the advance from (the plan's `stage` as you read "
                    "it): an advance repeated once the plan has left that stage changes "
                    "nothing and answers with the plan; a plan that moved back, or never "
                    "reached it, is 409 `/problems/stage-changed`. Without it the plan "
                    "advances from wherever it is.")


class MoveBackIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)
    to: str | None = Field(default=None, max_length=100)


class OverrideIn(Strict):
    reason_code: discharge.OverrideReason
    free_text: str = Field(min_length=1, max_length=2000)


class DischargeIn(Strict):
    override: OverrideIn | None = Field(
        default=None, description="Only to discharge with criteria unmet: who (you), why "
                                  "(a reason code) and the reason in words")


class Milestone(BaseModel):
    id: str
    label: str
    # What the criterion reads: only a task takes a result typed in (POST .../results).
    source: str
    stage: str
    target_date: date | None
    met: bool
    overdue: bool
    latest: float | None


class PlanOut(BaseModel):
    plan_id: UUID
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    status: str
    revision: int
    stage: str
    stage_position: int
    content: PlanContent
    milestones: list[Milestone]
    discharge: dict[str, Any] = Field(description="Whether discharge is allowed now, and why")
    closure: dict[str, Any] | None = Field(
        default=None, description="How the episode was closed while the plan was a draft "
                                  "(POST /episodes/{id}/close); none otherwise")
    sessions: list[dict[str, Any]] = Field(
        description="The logged sessions with their proposals; `superseded` says why a "
                    "progression still to decide can no longer be (the plan moved on since), "
                    "else null")
    reassessment_due: list[dict[str, Any]] = Field(
        description="The stall flags awaiting an outcome (empty when none)")
    stale_prescriptions: list[str]
    stage_history: list[dict[str, Any]]
    ruleset_version: int
    version: int = Field(description="Send it back as If-Match to edit only this version")


class SessionOut(BaseModel):
    appointment_id: UUID
    session_number: int
    appointment_type: str
    starts_at: datetime
    logged: bool


IfMatch = Annotated[int | None, Header(alias="If-Match", ge=0,
                                       description="The plan's version as last read")]


def clinician_id(principal: Principal) -> UUID:
    """The staff member as the clinician id decisions record (stable per organization)."""
    try:
        return UUID(principal.staff_id)
    except ValueError:
        return uuid.uuid5(principal.tenant_id, f"staff:{principal.staff_id}")


def as_out(state: plan.Plan, version: int, rule_set: PlanRules, today: date
           ) -> dict[str, Any]:
    verdicts = state.verdicts()
    latest = {r.criterion_id: r.value for r in state.results}
    milestones = [Milestone(id=c.id, label=c.label, source=c.source, stage=s.code,
                            target_date=s.target_date,
                            met=verdicts.get(c.id, False), overdue=c.id in state.overdue,
                            latest=latest.get(c.id))
                  for s in state.content.stages for c in s.exit_criteria]
    decision = state.discharge_decision()
    stale = [p.exercise for p in state.content.prescriptions
             if progression.stimulus_stale(p, today, state.stage_position,
                                           rule_set.progression)]
    open_ = state.open_reassessment
    return {
        "plan_id": state.plan_id, **state.ids.as_dict(), "status": state.status,
        "revision": state.revision, "stage": state.stage,
        "stage_position": state.stage_position, "content": state.content,
        "milestones": milestones,
        "discharge": {"allowed": decision.allowed, "reason": decision.reason,
                      "unmet": list(decision.unmet),
                      "missing_kinds": list(decision.missing_kinds),
                      "record": state.discharge.model_dump(mode="json")
                      if state.discharge else None},
        "closure": state.closure.model_dump(mode="json") if state.closure else None,
        "sessions": [{**s.model_dump(mode="json"), "superseded": plan.superseded(state, s)}
                     for s in state.sessions],
        "reassessment_due": [f.model_dump(mode="json") for f in open_.flags] if open_ else [],
        "stale_prescriptions": stale,
        "stage_history": [t.model_dump(mode="json") for t in state.stage_history],
        "ruleset_version": rule_set.version, "version": version}


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["plans"], route_class=AuditedRoute)
    db, store = runtime.db, runtime.store

    async def visible(conn: AsyncConnection, request: Request, principal: Principal,
                      episode_id: UUID, if_match: int | None = None
                      ) -> tuple[plan.Plan, int]:
        """The episode's plan and its version, if the caller is a clinician at its location
        (else 404), and unchanged since the caller read it when they say which version."""
        state, version = await plans.loaded(conn, store, plans.plan_id_for(episode_id),
                                            principal.tenant_id)
        # An episode closed before any plan was drafted has a closure and no plan to show.
        if not isinstance(state, plan.Plan) or not principal.can_at(state.ids.location_id,
                                                                    CLINICIANS):
            raise plan.PlanNotFoundError(f"episode {episode_id} has no plan you can see")
        note(request).patient_id = state.ids.patient_id
        note(request).location_id = state.ids.location_id
        note(request).resource_id = str(state.plan_id)
        if if_match is not None and if_match != version:
            raise PlanChangedError(f"the plan is at version {version}, you edited version "
                                   f"{if_match}", version=version)
        return state, version

    async def out(conn: AsyncConnection, principal: Principal, episode_id: UUID
                  ) -> dict[str, Any]:
        state, version = await plans.loaded(conn, store, plans.plan_id_for(episode_id),
                                            principal.tenant_id)
        assert isinstance(state, plan.Plan)
        rule_set = await plans.rules_of(conn, store, principal.tenant_id)
        return as_out(state, version, rule_set, datetime.now(UTC).date())

    Build = Callable[[AsyncConnection, plan.Plan, datetime, PlanRules], Any]

    async def command(request: Request, principal: Principal, episode_id: UUID, build: Build,
                      if_match: int | None = None) -> dict[str, Any]:
        async def work(conn: AsyncConnection) -> dict[str, Any]:
            state, _ = await visible(conn, request, principal, episode_id, if_match)
            rule_set = await plans.rules_of(conn, store, principal.tenant_id)
            cmd = await build(conn, state, datetime.now(UTC), rule_set)
            await plans.run(conn, store, cmd,
                            plans.context_for(principal.tenant_id, new_id(), state))
            return {"out": await out(conn, principal, episode_id)}

        return (await run_command(db, work, tenant_id=principal.tenant_id))["out"]

    def action(path: str, summary: str, body_type: type[BaseModel] | None,
               build: Callable[..., Any], verb: str, method: str = "POST",
               body_optional: bool = False) -> None:
        """One plan command at ``/episodes/{episode_id}/<path>``: the signature FastAPI reads
        is built here, so each route declares exactly its body and path parameters
        (``body_optional``: a body added to a route that had none, so it may still be left
        out)."""
        async def endpoint(request: Request, episode_id: UUID, principal: Principal,
                           if_match: int | None = None, body: Any = None,
                           appointment_id: UUID | None = None) -> dict[str, Any]:
            async def make(conn: AsyncConnection, state: plan.Plan, now: datetime,
                           rule_set: PlanRules) -> Any:
                return await build(conn=conn, state=state, now=now, rules=rule_set, body=body,
                                   by=clinician_id(principal), appointment_id=appointment_id,
                                   if_match=if_match)
            return await command(request, principal, episode_id, make, if_match)

        P = inspect.Parameter
        params = [P("request", P.POSITIONAL_OR_KEYWORD, annotation=Request),
                  P("episode_id", P.POSITIONAL_OR_KEYWORD, annotation=UUID)]
        if "{appointment_id}" in path:
            params.append(P("appointment_id", P.POSITIONAL_OR_KEYWORD, annotation=UUID))
        if body_type is not None and not body_optional:
            params.append(P("body", P.POSITIONAL_OR_KEYWORD, annotation=body_type))
        params.append(P("principal", P.POSITIONAL_OR_KEYWORD, annotation=Staff(*CLINICIANS)))
        if body_type is not None and body_optional:
            params.append(P("body", P.POSITIONAL_OR_KEYWORD, default=None,
                            annotation=Annotated[body_type | None, Body()]))
        params.append(P("if_match", P.POSITIONAL_OR_KEYWORD, annotation=IfMatch, default=None))
        endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        api.add_api_route(f"/episodes/{{episode_id}}/{path}", endpoint, methods=[method],
                          response_model=PlanOut, summary=summary,
                          openapi_extra=audited(verb, "plan"),
                          name=path.replace("/", "_").replace("{", "").replace("}", ""))

    @api.get("/episodes/{episode_id}/plan", response_model=PlanOut,
             summary="The episode's care plan, with milestones, sessions and what is due",
             openapi_extra=audited("read", "plan"))
    async def get_plan(request: Request, episode_id: UUID, principal: Staff(*CLINICIANS)
                       ) -> dict[str, Any]:
        async with db.read(principal.tenant_id) as conn:
            await visible(conn, request, principal, episode_id)
            return await out(conn, principal, episode_id)

    async def session_number(conn: AsyncConnection, state: plan.Plan,
                             appointment_id: UUID) -> int:
        number = await plans.session_number(conn, state.ids.episode_id, appointment_id)
        if number is None:
            raise SessionNotFoundError(
                f"appointment {appointment_id} is not a completed session of this episode")
        return number

    async def edit(*, conn: AsyncConnection, state: plan.Plan, now: datetime,
                   body: PlanEditIn, by: UUID, if_match: int | None, **_: Any
                   ) -> plan.EditPlan:
        if state.status == "active" and if_match is None:
            # A revision replaces the whole content, prescriptions included, which each
            # accepted progression changes: one sent blind would put back the parameters its
            # sender last read. (A draft changes only in its editor, which sends the version;
            # clients that edit drafts without it keep working.)
            raise PreconditionRequiredError(
                "revising an active plan needs its version as you read it (GET …/plan, "
                "`version`) in If-Match, so that nothing changed since is overwritten")
        library = await plans.library_of(conn)
        return plan.EditPlan(plan_id=state.plan_id, now=now, content=body.content,
                             reason=body.reason, by=by,
                             known_exercises=frozenset(library.codes))

    async def activate(*, state: plan.Plan, now: datetime, by: UUID, **_: Any
                       ) -> plan.ActivatePlan:
        return plan.ActivatePlan(plan_id=state.plan_id, now=now, by=by)

    async def log(*, conn: AsyncConnection, state: plan.Plan, now: datetime, rules: PlanRules,
                  body: plan.SessionLog, by: UUID, appointment_id: UUID, **_: Any
                  ) -> plan.LogSession:
        return plan.LogSession(plan_id=state.plan_id, now=now, appointment_id=appointment_id,
                               session_number=await session_number(conn, state, appointment_id),
                               log=body, rules=rules, by=by)

    async def next_morning(*, state: plan.Plan, now: datetime, rules: PlanRules,
                           body: NextMorningIn, appointment_id: UUID, **_: Any
                           ) -> plan.RecordNextMorning:
        return plan.RecordNextMorning(plan_id=state.plan_id, now=now,
                                      appointment_id=appointment_id, settled=body.settled,
                                      rules=rules)

    async def progression_(*, state: plan.Plan, now: datetime, body: ProgressionIn, by: UUID,
                           appointment_id: UUID, **_: Any) -> plan.DecideProgression:
        return plan.DecideProgression(plan_id=state.plan_id, now=now,
                                      appointment_id=appointment_id,
                                      changes=tuple(body.changes), by=by)

    async def result(*, conn: AsyncConnection, state: plan.Plan, now: datetime,
                     body: TaskResultIn, by: UUID, **_: Any) -> plan.RecordTaskResult:
        used = await plans.sessions_used(conn, state.ids.episode_id)
        return plan.RecordTaskResult(plan_id=state.plan_id, now=now,
                                     criterion_id=body.criterion_id, value=body.value,
                                     session_number=max(1, used), by=by)

    async def reassess(*, state: plan.Plan, now: datetime, body: ReassessmentIn, by: UUID,
                       **_: Any) -> plan.ResolveReassessment:
        return plan.ResolveReassessment(plan_id=state.plan_id, now=now, outcome=body.outcome,
                                        free_text=body.free_text, by=by)

    async def advance(*, state: plan.Plan, now: datetime, by: UUID, body: AdvanceIn | None,
                      **_: Any) -> plan.AdvanceStage:
        return plan.AdvanceStage(plan_id=state.plan_id, now=now, by=by,
                                 from_stage=body.from_stage if body else None)

    async def back(*, state: plan.Plan, now: datetime, body: MoveBackIn, by: UUID, **_: Any
                   ) -> plan.MoveStageBack:
        return plan.MoveStageBack(plan_id=state.plan_id, now=now, reason=body.reason,
                                  to=body.to, by=by)

    async def discharge_(*, state: plan.Plan, now: datetime, body: DischargeIn, by: UUID,
                         **_: Any) -> plan.DischargePatient:
        override = None if body.override is None else discharge.DischargeOverride(
            clinician_id=by, reason_code=body.override.reason_code,
            free_text=body.override.free_text, timestamp=now)
        return plan.DischargePatient(plan_id=state.plan_id, now=now, by=by, override=override)

    action("plan", "Edit the draft, or revise the active plan (its revision is published; "
           "revising one needs If-Match: 428 `/problems/if-match-required` without it)",
           PlanEditIn, edit, "update", method="PUT")
    action("plan/activate", "Activate the plan: it needs discharge criteria (functional, "
           "performance, sport/work), an expected session count and a target date",
           None, activate, "activate")
    action("sessions/{appointment_id}/log", "Log a completed session: exercises as done, RPE, "
           "pain, quick measures; returns the proposed progression", plan.SessionLog, log,
           "log")
    action("sessions/{appointment_id}/next-morning", "Record whether the pain settled by the "
           "next morning; the proposals are decided again", NextMorningIn, next_morning,
           "update")
    action("sessions/{appointment_id}/progression", "Accept the proposed parameters, or set "
           "others (a plan revision)", ProgressionIn, progression_, "progress")
    action("results", "Record a result for a criterion (a task, a test done in the session)",
           TaskResultIn, result, "record")
    action("reassessment", "Record the outcome of the due reassessment", ReassessmentIn,
           reassess, "reassess")
    action("stage/advance", "Advance to the next stage (every exit criterion must pass); "
           "with `from_stage`, a repeat changes nothing", AdvanceIn, advance, "advance",
           body_optional=True)
    action("stage/back", "Move back a stage, with a reason", MoveBackIn, back, "move-back")
    action("discharge", "Discharge: when every criterion is met, or with an override",
           DischargeIn, discharge_, "discharge")

    @api.get("/episodes/{episode_id}/sessions", response_model=list[SessionOut],
             summary="The episode's completed sessions and whether each is logged",
             openapi_extra=audited("list", "session"))
    async def list_sessions(request: Request, episode_id: UUID, principal: Staff(*CLINICIANS)
                            ) -> list[dict[str, Any]]:
        async with db.read(principal.tenant_id) as conn:
            state, _ = await visible(conn, request, principal, episode_id)
            rows = (await conn.execute(select(sessions).where(
                sessions.c.episode_id == episode_id).order_by(sessions.c.starts_at))).mappings()
            logged = {s.appointment_id for s in state.sessions}
            return [{"appointment_id": r["appointment_id"], "session_number": n,
                     "appointment_type": r["appointment_type"], "starts_at": r["starts_at"],
                     "logged": r["appointment_id"] in logged}
                    for n, r in enumerate(rows, start=1)]

    @api.get("/episodes/{episode_id}/home-program", response_class=HTMLResponse,
             summary="The patient's home program as a printable page",
             openapi_extra=audited("print", "plan"))
    async def home_program_page(request: Request, episode_id: UUID,
                                principal: Staff(*CLINICIANS)) -> Response:
        async with db.read(principal.tenant_id) as conn:
            state, _ = await visible(conn, request, principal, episode_id)
            library = await plans.library_of(conn)
        return HTMLResponse(home_program_html(state, library, datetime.now(UTC).date()))

    @api.get("/episodes/{episode_id}/home-program.pdf", response_class=Response,
             summary="The patient's home program as a PDF",
             responses={200: {"content": {"application/pdf": {}}}},
             openapi_extra=audited("print", "plan"))
    async def home_program_document(request: Request, episode_id: UUID,
                                    principal: Staff(*CLINICIANS)) -> Response:
        async with db.read(principal.tenant_id) as conn:
            state, _ = await visible(conn, request, principal, episode_id)
            library = await plans.library_of(conn)
        return Response(home_program_pdf(state, library, datetime.now(UTC).date()),
                        media_type="application/pdf")

    @api.get("/exercises", summary="The exercise library: the seed and your organization's")
    async def list_exercises(principal: CurrentStaff) -> list[dict[str, Any]]:
        async with db.read(principal.tenant_id) as conn:
            library = await plans.library_of(conn)
        return [e.model_dump(mode="json") for e in library.exercises]

    @api.put("/exercises/{code}", status_code=status.HTTP_200_OK,
             summary="Add an exercise to your organization's library, or your version of a "
                     "seeded one", openapi_extra=audited("update", "exercise"))
    async def put_exercise(request: Request, code: str, body: Exercise,
                           principal: Staff(*CLINICIANS)) -> dict[str, Any]:
        if body.code != code:
            raise plan.UnprescribedExerciseError(
                f"the body is exercise {body.code!r}, the address {code!r}", exercise=code)
        note(request).resource_id = code

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            row = {"tenant_id": principal.tenant_id, "code": code,
                   "exercise": body.model_dump(mode="json"),
                   "added_by": clinician_id(principal), "added_at": datetime.now(UTC)}
            await conn.execute(insert(exercise_rows).values(**row).on_conflict_do_update(
                index_elements=["tenant_id", "code"],
                set_={"exercise": row["exercise"], "added_by": row["added_by"],
                      "added_at": row["added_at"]}))
            return body.model_dump(mode="json")

        return await run_command(db, work, tenant_id=principal.tenant_id)

    @api.get("/rules", response_model=PlanRules,
             summary="The organization's plan numbers (CLINICAL.md §6) and their version")
    async def get_rules(principal: CurrentStaff) -> PlanRules:
        async with db.read(principal.tenant_id) as conn:
            return await plans.rules_of(conn, store, principal.tenant_id)

    @api.put("/rules", response_model=PlanRules,
             summary="Change the organization's plan numbers (operator): a new version")
    async def change_rules(body: PlanRules, principal: Staff(Role.OPERATOR)) -> PlanRules:
        async def work(conn: AsyncConnection) -> dict[str, Any]:
            tenant = principal.tenant_id
            await handle(conn, store, plans.rules_stream(tenant), rules, rules.ChangeRules(
                tenant_id=tenant, rules=body, changed_by=clinician_id(principal),
                now=datetime.now(UTC)), tenant_id=tenant,
                context=plans.context_for(tenant, new_id()))
            return (await plans.rules_of(conn, store, tenant)).model_dump(mode="json")

        return PlanRules.model_validate(await run_command(db, work,
                                                          tenant_id=principal.tenant_id))

    return api
