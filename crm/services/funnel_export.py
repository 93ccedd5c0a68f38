"""The funnel as tables: who sees which figures, the dashboard's figures and charts, the
people behind a figure, and the rows of every table for CSV (crm.services.exports) and JSON.

Managers and admins see every dimension; a caller sees only the registrations they called,
per lab (Scope caller_id = themselves), and only their own people lists.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager

from crm.models import Lab, Prospect, Registration, Source, User
from crm.models.registration import REGISTRATION_STATUS_LABELS
from crm.services import forecast as forecasting
from crm.services import funnel
from crm.services.funnel import (
    DIMENSION_LABELS,
    DIMENSIONS,
    STEP_LABELS,
    STEPS,
    Funnel,
    FunnelRow,
    Period,
    Scope,
)
from crm.timeutil import to_local

CALLER_DIMENSIONS = ("lab",)
KEY_COLUMN = {"source": "Source", "caller": "Appelant·e", "lab": "Open lab"}
PEOPLE_PER_PAGE = 50
TO_CALL_LIMIT = 20
MAX_CHART_DAYS = 366  # the x axis of the confirmations chart runs to the lab's day


class NotAllowed(Exception):
    """The figure belongs to someone else (a caller asking for another caller's people)."""


@dataclass(frozen=True)
class Filters:
    """What the dashboard shows: a dimension, a period (both days included), a lab or all."""

    by: str = "source"
    start: date | None = None
    end: date | None = None
    lab_id: int | None = None

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)

    def as_args(self, **extra: Any) -> dict[str, Any]:
        """The query-string arguments that give these filters back (for links)."""
        args: dict[str, Any] = {
            "by": self.by,
            "du": self.start.isoformat() if self.start else None,
            "au": self.end.isoformat() if self.end else None,
            "lab": self.lab_id,
            **extra,
        }
        return {key: value for key, value in args.items() if value is not None}


def dimensions_for(user: User) -> tuple[str, ...]:
    return DIMENSIONS if user.is_manager else CALLER_DIMENSIONS


def scope_for(user: User, filters: Filters) -> Scope:
    """A manager's scope is the filters; a caller's is their own calls, per lab."""
    if user.is_manager:
        return Scope(filters.by, filters.period, lab_id=filters.lab_id)
    return Scope("lab", filters.period, lab_id=filters.lab_id, caller_id=user.id)


def people_scope(user: User, filters: Filters, key: int | None) -> Scope:
    """The scope of a people list; NotAllowed when a caller asks for another's figure."""
    if user.is_manager:
        return scope_for(user, filters)
    if filters.by == "lab":
        return scope_for(user, filters)
    if filters.by == "caller" and key in (None, user.id):
        return Scope("caller", filters.period, lab_id=filters.lab_id, caller_id=user.id)
    raise NotAllowed(filters.by)


# --- The dashboard ---------------------------------------------------------------------


@dataclass
class LabForecast:
    lab: Lab
    forecast: forecasting.Forecast
    to_call: list[Registration]
    series: list[tuple[date, int]]


@dataclass
class Dashboard:
    filters: Filters
    scope: Scope
    funnel: Funnel
    dimensions: tuple[str, ...]
    lab: LabForecast | None = None
    charts: dict[str, Any] = field(default_factory=dict)


def lab_forecast(lab: Lab) -> LabForecast:
    return LabForecast(
        lab=lab,
        forecast=forecasting.forecast(lab),
        to_call=forecasting.to_call_first(lab, limit=TO_CALL_LIMIT),
        series=forecasting.confirmations_over_time(lab),
    )


def build(user: User, filters: Filters, lab: Lab | None) -> Dashboard:
    """Every figure of the dashboard page; the lab forecast for managers when a lab is chosen."""
    scope = scope_for(user, filters)
    result = funnel.funnel(scope)
    board = Dashboard(filters, scope, result, dimensions_for(user))
    if lab is not None and user.is_manager:
        board.lab = lab_forecast(lab)
    board.charts = charts(board)
    return board


# --- Charts (the data island read by static/dashboard.js) -------------------------------


def _list(pairs: Sequence[tuple[str, Any]]) -> str:
    return ", ".join(f"{label} {value}" for label, value in pairs)


def charts(board: Dashboard) -> dict[str, Any]:
    total = board.funnel.total
    steps = [(STEP_LABELS[step], total.counts[step]) for step in STEPS]
    result: dict[str, Any] = {
        "funnel": {
            "type": "bar",
            "labels": [label for label, _ in steps],
            "datasets": [{"label": "Personnes", "data": [count for _, count in steps]}],
            "summary": f"Entonnoir de recrutement, total : {_list(steps)}.",
        }
    }
    conversion = conversion_rows(board.funnel)
    what = KEY_COLUMN[board.scope.by].lower()
    result["conversion"] = {
        "type": "bar",
        "percent": True,
        "labels": [row[0] for row in conversion],
        "datasets": [{"label": "Confirmés / invités (%)", "data": [row[3] for row in conversion]}],
        "summary": (
            f"Taux de confirmation par {what} (confirmés sur invités) : "
            + (_list([(row[0], f"{row[3]} %") for row in conversion]) or "aucune donnée")
            + "."
        ),
    }
    if board.lab is not None:
        result["confirmations"] = confirmations_chart(board.lab)
    return result


def confirmations_chart(data: LabForecast) -> dict[str, Any]:
    """The confirmed count per day, and the target drawn up to the lab's day."""
    series, target = data.series, data.lab.target
    days = [day for day, _ in series]
    lab_day = to_local(data.lab.starts_at)
    assert lab_day is not None
    while days and days[-1] < lab_day.date() and len(days) < MAX_CHART_DAYS:
        days.append(days[-1] + timedelta(days=1))
    counts: list[int | None] = [count for _, count in series]
    counts += [None] * (len(days) - len(counts))
    return {
        "type": "line",
        "labels": [day.strftime("%d/%m") for day in days],
        "datasets": [
            {"label": "Confirmés", "data": counts},
            {"label": "Objectif", "data": [target] * len(days), "target": True},
        ],
        "summary": confirmations_summary(series, target),
    }


def confirmations_summary(series: list[tuple[date, int]], target: int) -> str:
    if not series:
        return f"Aucune confirmation pour l'instant ; objectif : {target}."
    first, last = series[0], series[-1]
    return (
        f"Confirmations du {first[0]:%d/%m/%Y} au {last[0]:%d/%m/%Y} : de {first[1]} à "
        f"{last[1]}, pour un objectif de {target}."
    )


# --- People behind a figure ------------------------------------------------------------


def people_select(scope: Scope, key: int | None, step: str) -> sa.Select[tuple[Registration]]:
    """The registrations behind one figure, with their prospect, source and lab loaded."""
    ids = funnel.people_query(scope, key, step)
    return (
        sa.select(Registration)
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .join(Source, Source.id == Prospect.source_id)
        .join(Lab, Lab.id == Registration.lab_id)
        .where(Registration.id.in_(ids))
        .options(
            contains_eager(Registration.prospect).contains_eager(Prospect.source),
            contains_eager(Registration.lab),
        )
        .order_by(Prospect.last_name, Prospect.first_name, Registration.id)
    )


PEOPLE_HEADER = ("prénom", "nom", "open lab", "date de l'open lab", "source", "statut")


def people_rows(registrations: Iterator[Registration]) -> Iterator[tuple[Any, ...]]:
    for reg in registrations:
        yield (
            reg.prospect.first_name,
            reg.prospect.last_name,
            reg.lab.title,
            reg.lab.starts_at,
            reg.prospect.source.name,
            REGISTRATION_STATUS_LABELS.get(reg.status, reg.status),
        )


# --- Table rows (CSV) and JSON ---------------------------------------------------------


def decimal(value: float | None) -> str:
    """1.5 → '1,5' (French spreadsheets); None → ''."""
    return "" if value is None else f"{value:g}".replace(".", ",")


def funnel_header(by: str) -> tuple[str, ...]:
    header = [KEY_COLUMN[by]]
    for step in STEPS:
        label = STEP_LABELS[step]
        header.append(label)
        if step != "invited":
            header += [f"{label} : % de l'étape précédente", f"{label} : % des invités"]
    return tuple(header)


def funnel_rows(result: Funnel) -> list[tuple[Any, ...]]:
    rows = []
    for row in [*result.rows, result.total]:
        cells: list[Any] = [row.label]
        for step in STEPS:
            cells.append(row.counts[step])
            if step != "invited":
                cells += [row.rate(step), row.overall(step)]
        rows.append(tuple(cells))
    return rows


FIGURES_COLUMNS = (
    "Appels par confirmé",
    "Messages par confirmé",
    "Délai médian du premier contact à la confirmation (jours)",
    "Taux d'absence (%)",
    "Taux de désinscription (%)",
)


def figures_header(by: str) -> tuple[str, ...]:
    return (KEY_COLUMN[by], *FIGURES_COLUMNS)


def figures(row: FunnelRow) -> tuple[float | int | None, ...]:
    return (
        row.calls_per_confirmed,
        row.messages_per_confirmed,
        row.median_days_to_confirm,
        row.no_show_rate,
        row.opt_out_rate,
    )


def figures_rows(result: Funnel) -> list[tuple[Any, ...]]:
    return [
        (row.label, *(decimal(v) if isinstance(v, float) else v for v in figures(row)))
        for row in [*result.rows, result.total]
    ]


def conversion_header(by: str) -> tuple[str, ...]:
    return (KEY_COLUMN[by], "Invités", "Confirmés", "Confirmés / invités (%)")


def conversion_rows(result: Funnel) -> list[tuple[Any, ...]]:
    return [
        (row.label, row.counts["invited"], row.confirmed, row.overall("confirmed") or 0)
        for row in result.rows
    ]


def row_json(row: FunnelRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "label": row.label,
        "counts": dict(row.counts),
        "rates": {step: row.rate(step) for step in STEPS[1:]},
        "overall": {step: row.overall(step) for step in STEPS[1:]},
        "calls": row.calls,
        "messages": row.messages,
        "calls_per_confirmed": row.calls_per_confirmed,
        "messages_per_confirmed": row.messages_per_confirmed,
        "median_days_to_confirm": row.median_days_to_confirm,
        "no_show_rate": row.no_show_rate,
        "opt_out_rate": row.opt_out_rate,
    }


def funnel_json(result: Funnel) -> dict[str, Any]:
    scope = result.scope
    return {
        "by": scope.by,
        "by_label": DIMENSION_LABELS[scope.by],
        "lab": scope.lab_id,
        "from": scope.period.start.isoformat() if scope.period.start else None,
        "to": scope.period.end.isoformat() if scope.period.end else None,
        "steps": [{"key": step, "label": STEP_LABELS[step]} for step in STEPS],
        "rows": [row_json(row) for row in result.rows],
        "total": row_json(result.total),
    }


FORECAST_HEADER = (
    "Source",
    "Confirmés ou présents",
    "Déjà présents",
    "Taux d'absence retenu (%)",
    "Taux issu de l'historique",
    "Participants attendus",
)


def forecast_rows(result: forecasting.Forecast) -> list[tuple[Any, ...]]:
    return [
        (
            row.name,
            row.confirmed,
            row.attended,
            round(100 * row.rate),
            row.from_history,
            decimal(round(row.expected, 1)),
        )
        for row in result.by_source
    ]


TO_CALL_HEADER = ("prénom", "nom", "source", "statut", "inscrit le")


def to_call_rows(registrations: list[Registration]) -> list[tuple[Any, ...]]:
    return [
        (
            reg.prospect.first_name,
            reg.prospect.last_name,
            reg.prospect.source.name,
            REGISTRATION_STATUS_LABELS.get(reg.status, reg.status),
            reg.created_at,
        )
        for reg in registrations
    ]


CONFIRMATIONS_HEADER = ("Jour", "Confirmés", "Objectif")


def confirmation_rows(series: list[tuple[date, int]], target: int) -> list[tuple[Any, ...]]:
    return [(day.strftime("%d/%m/%Y"), count, target) for day, count in series]
