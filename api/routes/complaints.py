"""Filing a complaint (any of the six channels)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import OptionalActor, SettingsDep
from api.errors import forbidden, unauthorized
from api.limits import limit
from api.responses import (
    CategoryGroupOut,
    CentreOut,
    DirectoryAgencyOut,
    IdempotencyKeyHeader,
    ReceiptOut,
    answer_response,
)
from api.routes.citizen import category_groups
from api.schemas import Channel, ComplaintIn
from api.service import file_complaint
from config.agencies import Agency, AgencyKind
from intake.idempotency import idempotency_of
from workflows.process import Actor, Role

router = APIRouter(prefix="/api/v1/complaints", tags=["intake"])
reference_router = APIRouter(prefix="/api/v1", tags=["intake"])

# Channels where a PSC officer keys the complaint in; citizens file themselves on the others, and staff who
# work cases (officers, supervisors) may file those on a citizen's behalf.
_STAFF_CHANNELS = {Channel.walk_in, Channel.letter, Channel.hotline, Channel.social}
_FILERS = frozenset({Role.OFFICER, Role.SUPERVISOR})


def _check_filer(channel: Channel, actor: Actor | None) -> None:
    """Staff channels need a signed-in officer; citizens' channels take anyone but staff who do no filing."""
    staff_channel = channel in _STAFF_CHANNELS
    if staff_channel and actor is None:
        raise unauthorized(
            "Complaints from the hotline, the counter and letters are keyed in by a signed-in officer.",
            "เรื่องจากสายด่วน เคาน์เตอร์ และจดหมาย ต้องบันทึกโดยเจ้าหน้าที่ที่เข้าสู่ระบบแล้ว",
        )
    if actor is None or (actor.role is Role.OFFICER) or (not staff_channel and actor.role in _FILERS):
        return
    raise forbidden(
        "Only officers key in complaints from the hotline, the counter and letters; citizens file the others.",
        "เฉพาะเจ้าหน้าที่รับเรื่องเท่านั้นที่บันทึกเรื่องจากสายด่วน เคาน์เตอร์ และจดหมายได้ ช่องทางอื่นผู้ร้องยื่นเอง",
        code="role_not_allowed",
    )


@router.post(
    "",
    status_code=201,
    response_model=ReceiptOut,
    response_model_exclude_unset=True,
    responses={
        201: {"description": "Filed: durable in the database; the tracking code works at once"},
        422: {"description": "Not valid, or an Idempotency-Key already used for another complaint"},
    },
    dependencies=[Depends(limit("intake"))],
)
async def create_complaint(
    body: ComplaintIn, request: Request, actor: OptionalActor, key: IdempotencyKeyHeader = None
) -> Response:
    """File a complaint; answers with its case number, tracking code and the date to expect an answer.

    The 201 means the complaint is committed in the database: its workflow is started right after, even if
    the case engine is away at this moment. Send an ``Idempotency-Key`` to retry safely: the same key and
    complaint file one case and get the same answer."""
    _check_filer(body.channel, actor)
    filed_by = actor or Actor(id=f"citizen:{body.channel.value}", role=Role.CITIZEN)
    scope = f"staff:{actor.id}" if actor else f"public:{body.channel.value}"
    answer = await file_complaint(
        request.app.state.intake, complaint=body, actor=filed_by, idempotency=idempotency_of(scope, key)
    )
    return answer_response(answer)


@reference_router.get("/categories", response_model=list[CategoryGroupOut])
async def categories(request: Request, settings: SettingsDep) -> list[dict[str, object]]:
    """The complaint categories a complaint may name (``category``), by group, in Thai and English. No sign-in."""
    return category_groups(request, settings)


def _matches(agency: Agency, words: list[str]) -> bool:
    """Every word of the search in the agency's code, names or aliases (case-insensitive)."""
    haystack = " ".join((agency.code, agency.name_th, agency.name_en, *agency.aliases)).casefold()
    return all(word in haystack for word in words)


@reference_router.get("/agencies", response_model=list[DirectoryAgencyOut])
async def agencies(
    request: Request,
    q: Annotated[
        str | None, Query(max_length=100, description="Words in the code, Thai or English name or an alias")
    ] = None,
    kind: Annotated[AgencyKind | None, Query(description="ministry, department, provincial_hall, ...")] = None,
    area: Annotated[
        str | None, Query(max_length=8, pattern=r"^(TH|\d{2}|\d{4})$", description="TH, a province or district code")
    ] = None,
) -> list[dict[str, Any]]:
    """The agency directory: the codes cases are assigned to and the board filters by (``agency``), with
    names in Thai and English, the areas each serves and its public contact points. No sign-in."""
    words = (q or "").casefold().split()
    return [
        a.model_dump(include=set(DirectoryAgencyOut.model_fields))
        for a in request.app.state.agencies.values()
        if (kind is None or a.kind is kind) and (area is None or area in a.areas) and _matches(a, words)
    ]


@reference_router.get("/centres", response_model=list[CentreOut])
async def centres(request: Request) -> list[dict[str, Any]]:
    """The receiving centres: the ``centre`` a case records and the board filters by. No sign-in."""
    return [c.model_dump() for c in request.app.state.centres.by_code.values()]
