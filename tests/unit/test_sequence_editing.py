"""Table tests of the sequence editor's rules (crm.services.sequence_editing, sequence_preview)."""

from __future__ import annotations

from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.messaging.encoding import ucs2_characters
from crm.models import SequenceStep
from crm.services.sequence_editing import (
    MAX_DAYS,
    StepInput,
    days_for,
    normalised,
    offset_for,
    step_errors,
    step_version,
    template_error,
    timing_errors,
)
from crm.services.sequence_preview import char_label, gsm7_hints, timing_words
from crm.services.sequences import DAY, DEFAULTS

SAMPLE = {
    "prenom": "Camille",
    "nom": "Martin",
    "lab": "Prendre rendez-vous en préfecture",
    "date": "mardi 3 mars 2026 à 09:00",
    "heure": "09:00",
    "lieu": "11 rue des Saussaies, 75008 Paris",
    "lien": "https://open-lab.example/r/MTIzNDU2.AbCdEfGhIjKlMnOpQrStUvWxYz0",
}
SMS = "Bonjour {prenom}, l'équipe Open Lab : lab {lab} le {date}. Répondre : {lien}"
SIGNED = "L'équipe Open Lab "  # 18 characters


@pytest.mark.parametrize(
    "kind,offset,day_time,expected",
    [
        ("invitation", DAY, None, "1 jour après l'inscription"),
        ("invitation", 3 * DAY, None, "3 jours après l'inscription"),
        ("invitation", 0, None, "dès l'inscription"),
        ("invitation", 0, time(18), "le jour de l'inscription à 18:00"),
        ("invitation", 2 * DAY, time(10, 30), "2 jours après l'inscription à 10:30"),
        ("invitation", 120, None, "2 heures après l'inscription"),
        ("invitation", 45, None, "45 minutes après l'inscription"),
        ("reminders", -7 * DAY, None, "7 jours avant le lab"),
        ("reminders", -DAY, time(18), "1 jour avant le lab à 18:00"),
        ("reminders", 0, time(8, 30), "le jour du lab à 08:30"),
        ("reminders", 0, None, "au début du lab"),
        ("reminders", DAY, None, "1 jour après le début du lab"),
        ("thank_you", DAY, None, "1 jour après la fin du lab"),
        ("thank_you", 0, None, "dès la fin du lab"),
        ("thank_you", 0, time(18), "le jour du lab à 18:00"),
    ],
)
def test_timing_in_words(kind, offset, day_time, expected):
    assert timing_words(kind, offset, day_time) == expected


@pytest.mark.parametrize(
    "template,expected",
    [
        ("Bonjour {prenom}, {lien}", None),
        ("Sans champ du tout", None),
        ("", None),
        ("Bonjour {foo}", "Champ inconnu dans le modèle : {foo}. Champs possibles : {prenom},"),
        ("Bonjour {}", "Champ inconnu dans le modèle : {}."),
        ("Bonjour {Prenom}", "Champ inconnu dans le modèle : {Prenom}."),
        ("Bonjour {prenom", "Accolade « { » non refermée"),
        ("Bonjour {{prenom}}", "Accolade « { » non refermée"),
        ("Bonjour prenom}", "Accolade « } » sans accolade ouvrante"),
        ("Bonjour {prenom}}", "Accolade « } » sans accolade ouvrante"),
    ],
)
def test_template_errors(template, expected):
    error = template_error(template)
    if expected is None:
        assert error is None
    else:
        assert error is not None and error.startswith(expected)


def test_the_unknown_field_message_lists_every_field():
    assert template_error("{foo}") == (
        "Champ inconnu dans le modèle : {foo}. Champs possibles : {prenom}, {nom}, {lab}, "
        "{date}, {heure}, {lieu}, {lien}."
    )


@pytest.mark.parametrize("kind", list(DEFAULTS))
def test_every_shipped_template_passes_the_editor_rules(kind):
    for spec in DEFAULTS[kind][1]:
        data = StepInput(
            spec.channel,
            days_for(kind, spec.offset_minutes),
            spec.day_time,
            spec.subject,
            spec.body,
        )
        assert step_errors(kind, data, one_way_sender="OpenLab", sample=SAMPLE) == {}


@pytest.mark.parametrize(
    "kind,offset,day_time,lab_start,field,message",
    [
        ("invitation", 0, None, None, None, None),
        ("invitation", MAX_DAYS * DAY, None, None, None, None),
        ("invitation", (MAX_DAYS + 1) * DAY, None, None, "days", "90 jours au plus"),
        ("invitation", -DAY, None, None, "days", "après l'inscription"),
        ("thank_you", -DAY, None, None, "days", "après la fin du lab"),
        ("thank_you", 0, None, None, None, None),
        ("reminders", -MAX_DAYS * DAY, None, None, None, None),
        ("reminders", -(MAX_DAYS + 1) * DAY, None, None, "days", "90 jours au plus"),
        ("reminders", DAY, None, None, "days", "avant le lab ou le jour même"),
        ("reminders", 0, None, None, "day_time", "demande une heure d'envoi"),
        ("reminders", 0, time(8, 30), time(9), None, None),
        ("reminders", 0, time(9), time(9), "day_time", "avant le début du lab (09:00)"),
        ("reminders", 0, time(8, 30), None, None, None),
        ("reminders", -DAY, None, time(9), None, None),
    ],
)
def test_timing_rules(kind, offset, day_time, lab_start, field, message):
    errors = timing_errors(kind, offset, day_time, lab_start)
    if field is None:
        assert errors == {}
    else:
        assert list(errors) == [field] and message in errors[field]


def _errors(kind="invitation", one_way="OpenLab", **values):  # type: ignore[no-untyped-def]
    data = {"channel": "sms", "days": 1, "day_time": None, "subject": "", "body": SMS}
    return step_errors(kind, StepInput(**{**data, **values}), one_way_sender=one_way, sample=SAMPLE)


@pytest.mark.parametrize(
    "values,one_way,expected",
    [
        ({}, "OpenLab", {}),
        ({"body": "Bonjour {prenom}"}, "OpenLab", {"body": "expéditeur alphanumérique"}),
        ({"body": "Bonjour {prenom}, l'équipe Open Lab. STOP au 36 000"}, None, {}),
        ({"body": "Bonjour {prenom}, l'équipe Open Lab. Répondez STOP"}, None, {}),
        ({"body": "Bonjour {prenom}, l'équipe Open Lab"}, None, {"body": "ou le mot STOP"}),
        ({"body": "Bonjour {prenom}, l'équipe Open Lab. Stoppez"}, None, {"body": "le mot STOP"}),
        ({"body": "Bonjour {prenom}, l'équipe Open Lab"}, "OpenLab", {"body": "alphanumérique"}),
        ({"body": "Bonjour {prenom} : {lien}"}, "OpenLab", {"body": "qui l'envoie"}),
        ({"body": "Bonjour {prenom}, STOP"}, None, {"body": "« L'équipe Open Lab »"}),
        ({"body": "Bonjour, l'équipe\u00a0OPEN   lab : {lien}"}, "OpenLab", {}),
        ({"body": ""}, None, {"body": "Saisissez le texte du message."}),
        ({"body": " \n "}, None, {"body": "Saisissez le texte du message."}),
        ({"body": "{lien} " + SIGNED + "a" * (6 * 153 - 64 - 18)}, None, {}),  # exactly 6 segments
        (
            {"body": "{lien} " + SIGNED + "a" * (6 * 153 - 63 - 18)},
            None,
            {"body": "Ce SMS ferait 7 segments"},
        ),
        ({"body": "{lien} " + SIGNED + "ê" * 400}, None, {"body": "en UCS-2"}),
        ({"channel": "email", "subject": ""}, None, {"subject": "Saisissez l'objet"}),
        ({"channel": "email", "subject": "Lab {lab}"}, None, {}),
        ({"channel": "email", "subject": "Lab\n{lab}"}, None, {"subject": "une seule ligne"}),
        ({"channel": "email", "subject": "x" * 256}, None, {"subject": "255 caractères"}),
        (
            {"channel": "email", "subject": "Lab", "body": "Bonjour. Open Lab, {lien}"},
            "OpenLab",
            {},
        ),
        ({"channel": "email", "subject": "Open Lab : lab", "body": "Bonjour {lien}"}, None, {}),
        ({"channel": "email", "subject": "Lab", "body": "Bonjour {lien}"}, None, {"body": "qui"}),
        (
            {"channel": "email", "subject": "Lab", "body": "L'équipe Open Lab. STOP"},
            None,
            {"body": "Chaque e-mail dit comment ne plus en recevoir"},
        ),
        ({"channel": "call", "body": ""}, "OpenLab", {}),
        ({"channel": "call", "body": "Rappeler {prenom}"}, None, {"body": "retirez {prenom}"}),
        ({"channel": "fax"}, None, {"channel": "Choisissez un canal"}),
        (
            {"days": -1, "body": "Bonjour {foo}", "channel": "email", "subject": ""},
            None,
            {"days": "après l'inscription", "subject": "Saisissez", "body": "{foo}"},
        ),
    ],
)
def test_step_errors(values, one_way, expected):
    errors = _errors(one_way=one_way, **values)
    assert set(errors) == set(expected)
    for field, message in expected.items():
        assert message in errors[field]


def test_the_sender_name_comes_from_the_setting():
    data = StepInput("sms", 1, None, "", "Bonjour de la DINUM : {lien}")
    errors = step_errors("invitation", data, one_way_sender=None, sample=SAMPLE)
    assert "« L'équipe Open Lab »" in errors["body"]
    assert (
        step_errors("invitation", data, one_way_sender=None, sample=SAMPLE, sender_name="DINUM")
        == {}
    )


@pytest.mark.parametrize("kind", list(DEFAULTS))
def test_every_default_template_names_the_sender_and_the_way_to_stop(kind):
    """The shipped templates pass the editor's rules with either kind of sender."""
    for step in DEFAULTS[kind][1]:
        for one_way in ("OpenLab", None):
            data = StepInput(
                step.channel,
                days_for(kind, step.offset_minutes),
                step.day_time,
                step.subject,
                step.body,
            )
            assert step_errors(kind, data, one_way_sender=one_way, sample=SAMPLE) == {}


def test_the_alphanumeric_message_explains_why():
    message = _errors(body="Bonjour {prenom}")["body"]
    assert "« OpenLab »" in message and "personne ne peut y répondre" in message
    assert "{lien}" in message and "seule façon de répondre ou de ne plus recevoir" in message


@given(st.sampled_from(list(DEFAULTS)), st.integers(min_value=0, max_value=MAX_DAYS))
def test_days_and_offsets_round_trip(kind, days):
    offset = offset_for(kind, days)
    assert days_for(kind, offset) == days
    assert (offset <= 0) if kind == "reminders" else (offset >= 0)


def _step(**values):  # type: ignore[no-untyped-def]
    data = {"channel": "sms", "offset_minutes": DAY, "day_time": None, "subject": "", "body": SMS}
    return SequenceStep(position=1, **{**data, **values})


@pytest.mark.parametrize(
    "change",
    [
        {"channel": "email"},
        {"offset_minutes": 2 * DAY},
        {"day_time": time(8, 30)},
        {"subject": "Objet"},
        {"body": SMS + "."},
    ],
)
def test_the_version_marker_changes_with_every_field(change):
    assert step_version(_step()) == step_version(_step())
    assert step_version(_step(**change)) != step_version(_step())


def test_normalised_keeps_lf_line_ends_and_drops_the_subject_of_an_sms():
    data = normalised(StepInput("sms", 1, None, "Objet", "  Bonjour\r\n{lien}\r "))
    assert (data.body, data.subject) == ("Bonjour\n{lien}", "")
    assert normalised(StepInput("email", 1, None, " Objet ", "x")).subject == "Objet"


def test_gsm7_hints_name_the_characters_to_replace():
    characters = ucs2_characters("Une fête « sympa » l’été\u202f!")
    assert characters == ["ê", "«", "»", "’", "\u202f"]
    assert gsm7_hints(characters) == [
        "« ê » → « e »",
        '« « » → « " »',
        '« » » → « " »',
        "« ’ » → « ' »",
        "espace fine insécable → espace normale",
    ]
    assert char_label("\u00a0") == "espace insécable"
