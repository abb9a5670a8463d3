"""What every console page shares: the signed-in user of a posted form, action forms built from the process
table, and errors shown on the page instead of as JSON.

Pages call the same services as the JSON API (``api.casework.run_action``, ``api.service.file_complaint``,
``store.queries.list_cases``); nothing here decides what a case may do next.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from api.auth import SESSION, Principal, StaffRole, principal_of, redeem
from api.deps import CSRF_COOKIE, SESSION_COOKIE
from api.errors import AppError, _describe, _field_path, forbidden, unauthorized

# Which console each role starts in (the home page sends them there).
HOME_OF: dict[StaffRole, str] = {
    StaffRole.OFFICER: "/officer",
    StaffRole.SUPERVISOR: "/board",
    StaffRole.AGENCY: "/agency",
    StaffRole.AGENCY_HEAD: "/agency",
    StaffRole.AUDITOR: "/audit",
    StaffRole.ADMIN: "/status",
}


@dataclass(frozen=True)
class Problem:
    """One message to show on a page, in both languages, with the form field it is about if any."""

    message: str
    message_th: str
    field: str | None = None

    def text(self, lang: str) -> str:
        return self.message_th if lang == "th" else self.message


def problems_of(exc: Exception) -> list[Problem]:
    """The bilingual messages of an error the services raise (the same words the JSON API answers with)."""
    if isinstance(exc, AppError):
        out = [Problem(exc.message, exc.message_th)]
        # A refusal's allowed_actions detail is for programs: its codes are in the message, in words.
        out += [Problem(d.message, d.message_th, d.field) for d in exc.details if d.allowed_actions is None]
        return out
    if isinstance(exc, RequestValidationError | ValidationError):
        problems = []
        for error in list(exc.errors())[:20]:
            message, message_th, extra = _describe(error)
            problems.append(Problem(message, message_th, _field_path(error.get("loc", ()), extra)))
        return problems
    raise exc


def answer_problems(answer: Any) -> list[Problem]:
    """The problems of an action's answer when the workflow refused it (the answer carries the error body)."""
    if answer.status_code < 400:
        return []
    error = (answer.body or {}).get("error") or {}
    return [
        Problem(
            str(error.get("message", "The action was refused.")),
            str(error.get("message_th", "ไม่สามารถดำเนินการได้")),
        )
    ]


def csrf_ok(request: Request, sent: str) -> bool:
    """The form's token equals the CSRF cookie (double submit)."""
    expected = request.cookies.get(CSRF_COOKIE, "")
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def check_csrf(request: Request, form: FormData) -> None:
    """403 unless the posted form carries the page's CSRF token."""
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not csrf_ok(request, sent):
        raise forbidden("The form has expired; reload the page.", "แบบฟอร์มหมดอายุ กรุณาโหลดหน้าใหม่", code="csrf_failed")


async def form_principal(request: Request, session: AsyncSession, form: FormData) -> Principal:
    """The signed-in staff member who posted ``form``: the session cookie plus the form's CSRF token.

    The JSON API wants the token in a header; a plain HTML form can only send it as a field, so posted
    pages check it here and then resolve the cookie the same way.
    """
    check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise unauthorized("Sign in first.", "กรุณาเข้าสู่ระบบก่อน")
    _, user = await redeem(session, token=cookie, kind=SESSION, now=datetime.now(UTC))
    principal = principal_of(user)
    request.state.principal = principal  # what log_read() and the services read
    return principal


def action_body(fields: Sequence[Mapping[str, Any]], form: FormData) -> dict[str, Any]:
    """The JSON body of an action from its form, by the process table's field specs (types only: the
    action's model checks the values)."""
    body: dict[str, Any] = {}
    for spec in fields:
        name, kind = spec["name"], spec["kind"]
        if kind == "agencies":
            codes = [c.strip() for v in form.getlist(name) for c in str(v).replace(",", " ").split() if c.strip()]
            if codes:
                body[name] = codes
            continue
        value = form.get(name)
        if not isinstance(value, str) or not value.strip():
            continue
        if kind == "int":
            try:
                body[name] = int(value.strip())
            except ValueError:
                body[name] = value
        else:
            body[name] = value.strip()
    return body


def find_action(actions: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    return next((a for a in actions if a["action"] == name), None)


async def act_from_page(
    *,
    case: Any,
    action: str,
    actor: Any,
    body: dict[str, Any] | None,
    session: AsyncSession,
    client: Any,
    request: Request,
) -> tuple[list[Problem], int]:
    """Run a page's action through the API's own ``run_action`` (idempotent, bounded wait): the problems to
    show (none when it was applied or accepted) and the status to answer with."""
    from api.casework import run_action

    try:
        answer = await run_action(
            case=case,
            action=action,
            actor=actor,
            body=body,
            session=session,
            client=client,
            request=request,
            key=None,
        )
    except (AppError, RequestValidationError) as exc:
        return problems_of(exc), exc.status if isinstance(exc, AppError) else 422
    return answer_problems(answer), answer.status_code
