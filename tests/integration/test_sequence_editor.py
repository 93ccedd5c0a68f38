"""The sequence editor through HTTP: managers only, personalise, edit, refusals, preview, remove."""

from __future__ import annotations

import html
import re
from datetime import time, timedelta

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.messaging.encoding import sms_info
from crm.models import Event, FollowUp, Lab, Sequence, SequenceStep
from crm.services import sequences
from crm.services.sequences import DAY
from crm.timeutil import utcnow
from tests.conftest import csrf_token
from tests.factories import person

LINK_BODY = (
    "Bonjour {prenom}, l'équipe Open Lab vous attend au lab {lab} le {date}. Répondre : {lien}"
)


def base(world) -> str:
    return f"/labs/{world['lab'].id}/sequences"


def text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.get_data(as_text=True))


def words(page: str) -> str:
    """The page's text without its tags, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", "", page).split())


def post(client, url: str, data: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client, "/labs/")})


def own_steps(lab_id: int, kind: str = "invitation") -> list[SequenceStep]:
    db.session.expire_all()
    sequence = db.session.scalar(
        sa.select(Sequence).where(Sequence.lab_id == lab_id, Sequence.kind == kind)
    )
    return [] if sequence is None else [s for s in sequence.steps if s.removed_at is None]


def personalise(client, world, kind: str = "invitation") -> list[SequenceStep]:  # type: ignore[no-untyped-def]
    response = post(client, f"{base(world)}/{kind}/personnaliser")
    assert response.status_code == 302
    return own_steps(world["lab"].id, kind)


def version(client, url: str) -> str:  # type: ignore[no-untyped-def]
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="version" type="hidden" value="([^"]*)"', page).group(1)


def step_form(client, url: str, **overrides: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    values = {
        "channel": "sms",
        "days": "2",
        "day_time": "",
        "subject": "",
        "body": LINK_BODY,
        "version": version(client, url),
    }
    return {**values, **overrides}


def snapshot() -> tuple[object, ...]:
    """Everything the editor may change: steps, sequences, follow-up rows, events."""
    db.session.expire_all()
    steps = db.session.execute(
        sa.select(
            SequenceStep.id,
            SequenceStep.channel,
            SequenceStep.offset_minutes,
            SequenceStep.day_time,
            SequenceStep.subject,
            SequenceStep.body,
            SequenceStep.removed_at,
        ).order_by(SequenceStep.id)
    ).all()
    rows = db.session.execute(
        sa.select(FollowUp.id, FollowUp.step_id, FollowUp.status, FollowUp.reason).order_by(
            FollowUp.id
        )
    ).all()
    sequences_ = db.session.execute(sa.select(Sequence.id).order_by(Sequence.id)).all()
    events = db.session.scalar(sa.select(sa.func.count(Event.id)))
    return tuple(steps), tuple(rows), tuple(sequences_), events


def rows_of(registration_id: int) -> dict[int, FollowUp]:
    """The registration's invitation rows by step position."""
    db.session.expire_all()
    query = sa.select(FollowUp).where(FollowUp.registration_id == registration_id)
    return {row.step.position: row for row in db.session.scalars(query)}


def changes() -> list[Event]:
    query = sa.select(Event).where(Event.kind == "sequence.changed").order_by(Event.id)
    return list(db.session.scalars(query))


# --- access ----------------------------------------------------------------------------------


def test_callers_get_403_everywhere(world, caller_client):
    default = sequences.default_sequence("invitation")
    db.session.commit()
    step_url = f"{base(world)}/etapes/{default.steps[0].id}"
    assert caller_client.get(f"{base(world)}/").status_code == 403
    assert caller_client.get(step_url).status_code == 403
    assert post(caller_client, f"{base(world)}/invitation/personnaliser").status_code == 403
    assert post(caller_client, step_url, {"body": "x"}).status_code == 403
    assert post(caller_client, f"{step_url}/supprimer").status_code == 403
    assert caller_client.get(f"{base(world)}/invitation/etapes/nouvelle").status_code == 403
    assert (
        db.session.scalar(sa.select(sa.func.count(Sequence.id)).where(Sequence.lab_id.is_not(None)))
        == 0
    )


def test_bad_ids_and_another_labs_sequence_are_404(world, manager_client):
    other = Lab(
        title="Autre",
        starts_at=utcnow() + timedelta(days=9),
        ends_at=utcnow() + timedelta(days=9, hours=3),
    )
    db.session.add(other)
    db.session.commit()
    assert personalise(manager_client, {"lab": other})
    other_step = own_steps(other.id)[0]
    assert manager_client.get("/labs/999999/sequences/").status_code == 404
    assert manager_client.get(f"{base(world)}/etapes/999999").status_code == 404
    assert manager_client.get(f"{base(world)}/etapes/{other_step.id}").status_code == 404
    assert (
        post(manager_client, f"{base(world)}/etapes/{other_step.id}/supprimer").status_code == 404
    )
    assert post(manager_client, f"{base(world)}/rappels/personnaliser").status_code == 404
    assert manager_client.get(f"{base(world)}/inconnu/etapes/nouvelle").status_code == 404


# --- the overview ----------------------------------------------------------------------------


def test_the_page_lists_the_three_default_sequences_with_timing_and_sms_figures(
    world, manager_client
):
    page = words(text(manager_client.get(f"{base(world)}/")))
    for label in ("Invitation", "Rappels avant le lab", "Remerciement"):
        assert f"Personnaliser pour cet open lab : {label}" in page
    assert page.count("Modèle par défaut") == 3
    for timing in (
        "1 jour après l'inscription",
        "5 jours après l'inscription",
        "7 jours avant le lab",
        "le jour du lab à 08:30",
        "1 jour après la fin du lab",
    ):
        assert timing in page
    assert re.search(r"\d+ caractères, GSM-7, 2 segments", page)
    # The test configuration sends from the outbox's alphanumeric name: the notice is there.
    assert "Personne ne peut répondre aux SMS" in page


# --- personalise -----------------------------------------------------------------------------


def test_personalise_copies_the_default_and_repoints_only_scheduled_rows(world, manager_client):
    sent, waiting = person(world, first_name="Ana"), person(world, first_name="Bo")
    other_lab = Lab(
        title="Autre",
        starts_at=utcnow() + timedelta(days=9),
        ends_at=utcnow() + timedelta(days=9, hours=3),
    )
    db.session.add(other_lab)
    db.session.commit()
    elsewhere = person({"source": world["source"], "lab": other_lab}, first_name="Cy")
    default = sequences.default_sequence("invitation")
    first_sent = rows_of(sent.id)[1]
    first_sent.status, first_sent.sent_at = "sent", utcnow()
    db.session.commit()

    copy = personalise(manager_client, world)
    assert [(s.position, s.channel, s.offset_minutes, s.body) for s in copy] == [
        (s.position, s.channel, s.offset_minutes, s.body) for s in default.steps
    ]
    copy_ids = {s.position: s.id for s in copy}
    default_ids = {s.position: s.id for s in default.steps}
    assert {p: r.step_id for p, r in rows_of(sent.id).items()} == {
        1: default_ids[1],
        **{p: copy_ids[p] for p in (2, 3, 4)},
    }
    assert {p: r.step_id for p, r in rows_of(waiting.id).items()} == copy_ids
    assert {p: r.step_id for p, r in rows_of(elsewhere.id).items()} == default_ids
    [event] = changes()
    assert event.lab_id == world["lab"].id and event.actor_id is not None
    assert event.data["action"] == "personnalisation" and event.data["repointed"] == 7

    before = snapshot()
    assert personalise(manager_client, world) == copy  # a second click does nothing more
    assert snapshot() == before
    page = text(manager_client.get(f"{base(world)}/"))
    assert "Personnalisée pour cet open lab" in page and page.count("Modèle par défaut") == 2


# --- edit ------------------------------------------------------------------------------------


def test_a_manager_edits_a_step_of_the_labs_own_sequence(world, manager_client):
    registration = person(world, first_name="Ana")
    first = personalise(manager_client, world)[0]
    url = f"{base(world)}/etapes/{first.id}"
    response = post(manager_client, url, step_form(manager_client, url, days="2", day_time="09:15"))
    assert response.status_code == 302
    step = db.session.get(SequenceStep, first.id)
    assert (step.offset_minutes, step.day_time, step.body) == (2 * DAY, time(9, 15), LINK_BODY)
    assert rows_of(registration.id)[1].step_id == step.id  # the scheduled row sends this text
    event = changes()[-1]
    assert event.data["action"] == "etape_modifiee" and event.data["step_id"] == step.id
    assert set(event.data["changed"]) == {"offset_minutes", "day_time", "body"}
    assert event.data["after"]["day_time"] == "09:15"
    page = text(manager_client.get(response.headers["Location"]))
    assert "Étape 1 enregistrée" in page


def test_an_email_step_keeps_its_subject_and_a_reminder_counts_back(world, manager_client):
    steps = personalise(manager_client, world, "reminders")
    url = f"{base(world)}/etapes/{steps[0].id}"
    data = step_form(
        manager_client,
        url,
        channel="email",
        days="3",
        subject="Rappel {lab}",
        body="Bonjour {prenom}\r\nÀ bientôt, l'équipe Open Lab. {lien}",
    )
    assert post(manager_client, url, data).status_code == 302
    step = db.session.get(SequenceStep, steps[0].id)
    assert (step.offset_minutes, step.subject, step.body) == (
        -3 * DAY,
        "Rappel {lab}",
        "Bonjour {prenom}\nÀ bientôt, l'équipe Open Lab. {lien}",
    )
    assert "3 jours avant le lab" in text(manager_client.get(f"{base(world)}/"))


@pytest.mark.parametrize(
    "kind,overrides,field,message",
    [
        (
            "invitation",
            {"body": "Bonjour {foo}, {lien}"},
            "body",
            "Champ inconnu dans le modèle : {foo}. Champs possibles : {prenom}, {nom}, {lab}, "
            "{date}, {heure}, {lieu}, {lien}.",
        ),
        ("invitation", {"body": "Bonjour {prenom, {lien}"}, "body", "Accolade « { » non refermée"),
        (
            "invitation",
            {"body": "Bonjour prenom}, {lien}"},
            "body",
            "Accolade « } » sans accolade ouvrante",
        ),
        ("invitation", {"body": "   "}, "body", "Saisissez le texte du message."),
        (
            "invitation",
            {"channel": "email", "subject": ""},
            "subject",
            "Saisissez l'objet de l'e-mail.",
        ),
        (
            "invitation",
            {"channel": "email", "subject": "Lab {titre}"},
            "subject",
            "Champ inconnu dans le modèle : {titre}.",
        ),
        ("invitation", {"channel": "fax"}, "channel", "Choisissez un canal"),
        ("invitation", {"days": "91"}, "days", "Le délai doit être de 90 jours au plus."),
        ("invitation", {"days": "-1"}, "days", "Une relance d'invitation part après l'inscription"),
        ("invitation", {"days": "deux"}, "days", "Saisissez un nombre entier de jours"),
        (
            "invitation",
            {"day_time": "25:00"},
            "day_time",
            "Saisissez une heure valide, par exemple 08:30.",
        ),
        (
            "invitation",
            {"body": "{lien} Open Lab " + "Très long message. " * 60},
            "body",
            "segments",
        ),
        (
            "invitation",
            {"channel": "call", "body": "Rappeler {prenom}"},
            "body",
            "retirez {prenom}",
        ),
        ("reminders", {"days": "-2"}, "days", "Un rappel part avant le lab ou le jour même"),
        (
            "reminders",
            {"days": "0", "day_time": ""},
            "day_time",
            "Un rappel le jour du lab demande une heure d'envoi",
        ),
        ("thank_you", {"days": "-1"}, "days", "Un remerciement part après la fin du lab"),
    ],
)
def test_each_refusal_is_shown_next_to_its_field_and_saves_nothing(
    world, manager_client, kind, overrides, field, message
):
    person(world)
    step = personalise(manager_client, world, kind)[0]
    url = f"{base(world)}/etapes/{step.id}"
    data = step_form(manager_client, url, **overrides)
    before = snapshot()
    response = post(manager_client, url, data)
    assert response.status_code == 400
    page = text(response)
    assert message in page
    error = re.search(rf'<p id="{field}-erreur" class="fr-error-text">([^<]*)</p>', page)
    assert error and message in error.group(1)
    assert f'aria-describedby="{field}-erreur"' in page
    assert snapshot() == before


def test_with_an_alphanumeric_sender_every_sms_carries_the_link(
    world, manager_client, app, monkeypatch
):
    step = personalise(manager_client, world)[0]
    url = f"{base(world)}/etapes/{step.id}"
    monkeypatch.setitem(app.config, "SMS_BACKEND", "twilio")
    monkeypatch.setitem(app.config, "TWILIO_SENDER", "OpenLab")
    assert "Personne ne peut répondre aux SMS" in text(manager_client.get(url))
    before = snapshot()
    response = post(
        manager_client, url, step_form(manager_client, url, body="Bonjour {prenom}, à bientôt.")
    )
    assert response.status_code == 400
    page = text(response)
    assert (
        "expéditeur alphanumérique (« OpenLab »)" in page
        and "ajoutez {lien}".lower() in page.lower()
    )
    assert snapshot() == before

    # A number can receive replies: the notice is gone and the word STOP may replace the link
    # (but one of the two is still required).
    monkeypatch.setitem(app.config, "TWILIO_SENDER", "+33612345678")
    assert "Personne ne peut répondre aux SMS" not in text(manager_client.get(url))
    body = "Bonjour {prenom}, à bientôt. L'équipe Open Lab"
    response = post(manager_client, url, step_form(manager_client, url, body=body))
    assert response.status_code == 400 and "ou le mot STOP" in text(response)
    body += " (STOP au 36 000)"
    response = post(manager_client, url, step_form(manager_client, url, body=body))
    assert response.status_code == 302
    assert db.session.get(SequenceStep, step.id).body == body


def test_a_stale_form_does_not_overwrite_the_other_managers_change(world, manager_client):
    step = personalise(manager_client, world)[0]
    url = f"{base(world)}/etapes/{step.id}"
    mine = step_form(manager_client, url, body="Ma version, l'équipe Open Lab. {lien}")
    db.session.get(SequenceStep, step.id).body = "La version de l'autre responsable. {lien}"
    db.session.commit()
    before = snapshot()
    response = post(manager_client, url, mine)
    assert response.status_code == 400
    page = text(response)
    assert "modifiée entre-temps" in page and "Version actuelle de l'étape" in page
    assert "La version de l'autre responsable." in page
    assert snapshot() == before
    # The form now carries the current version: saving again is a deliberate choice.
    fresh = re.search(
        r'name="version" type="hidden" value="([^"]*)"', response.get_data(as_text=True)
    ).group(1)
    assert post(manager_client, url, {**mine, "version": fresh}).status_code == 302
    assert db.session.get(SequenceStep, step.id).body == "Ma version, l'équipe Open Lab. {lien}"


def test_the_default_sequence_cannot_be_edited_from_a_lab(world, manager_client):
    default = sequences.default_sequence("invitation")
    db.session.commit()
    url = f"{base(world)}/etapes/{default.steps[0].id}"
    page = text(manager_client.get(url))
    assert "Modèle par défaut : non modifiable ici" in page and 'name="body"' not in page
    before = snapshot()
    response = post(
        manager_client, url, {"channel": "sms", "days": "1", "body": "Piraté {lien}", "version": ""}
    )
    assert response.status_code == 400 and "personnalisez d'abord" in text(response)
    assert post(manager_client, f"{url}/supprimer").status_code == 302
    assert snapshot() == before
    assert manager_client.get(f"{base(world)}/invitation/etapes/nouvelle").status_code == 302


# --- preview ---------------------------------------------------------------------------------


def test_the_preview_uses_a_real_person_and_shows_the_sms_figures(world, manager_client):
    first = person(world, first_name="Hélène", last_name="Durand")
    second = person(world, first_name="Noé", last_name="Petit")
    step = personalise(manager_client, world)[0]
    url = f"{base(world)}/etapes/{step.id}"
    body = "Bonjour {prenom}, une fête au lab {lab} ! L'équipe Open Lab. {lien}"
    assert post(manager_client, url, step_form(manager_client, url, body=body)).status_code == 302

    page = text(manager_client.get(url))
    fields = sequences.fields_for(first, first.prospect, world["lab"])
    rendered = sequences.render(body, fields)
    info = sms_info(rendered)
    assert info.encoding == "UCS-2"
    assert "Aperçu pour Hélène Durand" in page and rendered in page
    assert f"{info.length} caractères" in page and "UCS-2" in page
    assert re.search(rf"Segments</dt><dd>{info.segments}\b", page)
    assert "« ê »" in page and "« ê » → « e »" in page

    page = text(manager_client.get(f"{url}?prospect={second.prospect_id}"))
    assert "Aperçu pour Noé Petit" in page
    assert manager_client.get(f"{url}?prospect=999999").status_code == 404
    assert manager_client.get(f"{url}?prospect=abc").status_code == 404


def test_preview_without_saving_shows_the_typed_text(world, manager_client):
    person(world, first_name="Ana")
    step = personalise(manager_client, world)[0]
    url = f"{base(world)}/etapes/{step.id}"
    before = snapshot()
    data = step_form(
        manager_client, url, body="Salut {prenom} ! L'équipe Open Lab. {lien}", action="apercu"
    )
    response = post(manager_client, url, data)
    assert response.status_code == 200
    page = text(response)
    assert "Salut Ana !" in page and "texte saisi, non enregistré" in page and "GSM-7" in page
    assert snapshot() == before


def test_a_lab_with_nobody_previews_a_labelled_example(world, manager_client):
    default = sequences.default_sequence("invitation")
    db.session.commit()
    page = text(manager_client.get(f"{base(world)}/etapes/{default.steps[0].id}"))
    assert "Personne n'est encore inscrit à cet open lab" in page
    assert "Aperçu pour Camille Martin (exemple)" in page and "Bonjour Camille" in page


# --- add and remove --------------------------------------------------------------------------


def test_remove_cancels_the_scheduled_rows_and_keeps_the_sent_ones(world, manager_client):
    sent, waiting = person(world, first_name="Ana"), person(world, first_name="Bo")
    steps = personalise(manager_client, world)
    second = steps[1]
    row = rows_of(sent.id)[2]
    row.status, row.sent_at = "sent", utcnow()
    db.session.commit()
    page = text(manager_client.get(f"{base(world)}/etapes/{second.id}/supprimer"))
    assert "Messages programmés annulés : 1" in page

    response = post(manager_client, f"{base(world)}/etapes/{second.id}/supprimer")
    assert response.status_code == 302
    assert db.session.get(SequenceStep, second.id).removed_at is not None
    assert rows_of(sent.id)[2].status == "sent"
    cancelled = rows_of(waiting.id)[2]
    assert cancelled.status == "cancelled"
    assert cancelled.reason == "Étape supprimée de la séquence par Test manager."
    assert rows_of(waiting.id)[3].status == "scheduled"
    assert changes()[-1].data | {"step_id": 0} == {
        "action": "etape_supprimee",
        "sequence": "invitation",
        "step_id": 0,
        "position": 2,
        "cancelled": 1,
    }
    assert [s.position for s in own_steps(world["lab"].id)] == [1, 3, 4]
    assert f"/etapes/{second.id}" not in manager_client.get(f"{base(world)}/").get_data(
        as_text=True
    )
    assert manager_client.get(f"{base(world)}/etapes/{second.id}").status_code == 404


def test_a_new_step_takes_the_next_free_position(world, manager_client):
    steps = personalise(manager_client, world)
    assert post(manager_client, f"{base(world)}/etapes/{steps[-1].id}/supprimer").status_code == 302
    url = f"{base(world)}/invitation/etapes/nouvelle"
    page = text(manager_client.get(url))
    assert "Nombre de jours après l'inscription" in page
    response = post(
        manager_client,
        url,
        {"channel": "sms", "days": "10", "day_time": "", "subject": "", "body": LINK_BODY},
    )
    assert response.status_code == 302
    added = own_steps(world["lab"].id)[-1]
    assert (added.position, added.offset_minutes, added.body) == (5, 10 * DAY, LINK_BODY)
    assert changes()[-1].data["action"] == "etape_ajoutee"
    before = snapshot()
    response = post(manager_client, url, {"channel": "sms", "days": "10", "body": "Sans lien"})
    assert response.status_code == 400 and snapshot() == before
