"""The import's rules without a database: one row → created, merged or rejected."""

from __future__ import annotations

import pytest

from crm.services.import_rules import BatchPlan, RowRejected, clean_row, row_input

MAPPING = ["first_name", "last_name", "phone", "email", "organisation"]


def row(first="", last="", phone="", email="", org=""):  # type: ignore[no-untyped-def]
    return [first, last, phone, email, org]


def known(id_, **values):  # type: ignore[no-untyped-def]
    base = dict.fromkeys(("first_name", "last_name", "organisation", "profile", "notes"), "") | {
        "phone": None,
        "email": None,
        "phone_raw": None,
    }
    return {"id": id_, **base, **values}


def run_plan(rows, existing=()):  # type: ignore[no-untyped-def]
    plan = BatchPlan(existing)
    outcomes = []
    for fields in rows:
        try:
            outcome = plan.add(clean_row(fields, MAPPING))
        except RowRejected as exc:
            outcomes.append(("rejected", str(exc)))
        else:
            outcomes.append(("created" if outcome.created else "merged", outcome.filled))
    return plan, outcomes


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # Same phone written two ways: one person, the second row fills the empty fields.
        (
            [row("Léa", "", "06 12 34 56 78"), row("", "Martin", "+33612345678", "lea@ex.fr")],
            ["created", "merged"],
        ),
        # Same e-mail, different case.
        ([row("Ann", email="Ann@Ex.fr"), row("Bob", email="ann@ex.FR")], ["created", "merged"]),
        # Phone of the first row, e-mail of the second: merged into the one with the phone.
        (
            [
                row("A", phone="0612345678"),
                row("B", email="b@ex.fr"),
                row("C", phone="06 12 34 56 78", email="b@ex.fr"),
            ],
            ["created", "created", "merged"],
        ),
        # Overseas number (Réunion) and a plain metropolitan one: two people.
        ([row(phone="0692 12 34 56"), row(phone="0612345678")], ["created", "created"]),
        # Bad phone but a good e-mail: imported; neither: rejected.
        ([row("A", phone="12", email="a@ex.fr"), row("B", phone="12")], ["created", "rejected"]),
        ([row("Nobody")], ["rejected"]),
        # A row with a wrong number of columns.
        ([["A", "B", "0612345678"]], ["rejected"]),
    ],
    ids=[
        "phone-formats",
        "email-case",
        "phone-wins",
        "overseas",
        "bad-phone",
        "no-contact",
        "short-row",
    ],
)
def test_outcomes_within_a_file(rows, expected):
    _, outcomes = run_plan(rows)
    assert [o[0] for o in outcomes] == expected


def test_a_merge_fills_empty_fields_and_keeps_existing_values():
    existing = [known(7, first_name="Léa", phone="+33612345678", organisation="")]
    plan, outcomes = run_plan(
        [row("Lucie", "Martin", "06 12 34 56 78", "lea@ex.fr", "Mairie")], existing
    )
    assert outcomes == [("merged", ["email", "last_name", "organisation"])]
    person = plan.changed_people()[0]
    assert person.id == 7
    assert person.values["first_name"] == "Léa"  # never overwritten
    assert person.values["email"] == "lea@ex.fr"
    update = person.row()
    assert set(update) == {"email", "last_name", "organisation", "search_text"}
    assert plan.new_people() == []


def test_a_merge_never_takes_a_contact_that_belongs_to_someone_else():
    existing = [
        known(1, first_name="Ann", phone="+33612345678"),
        known(2, first_name="Bob", email="bob@ex.fr"),
    ]
    plan, outcomes = run_plan([row(phone="0612345678", email="bob@ex.fr")], existing)
    assert outcomes == [("merged", [])]
    assert plan.changed_people() == []


def test_a_contact_taken_earlier_in_the_batch_is_not_given_twice():
    plan, outcomes = run_plan(
        [
            row("A", phone="0612345678"),
            row("B", email="b@ex.fr"),
            row("A", phone="0612345678", email="b@ex.fr"),
        ]
    )
    a, b = plan.new_people()
    assert (a.values["email"], b.values["email"]) == (None, "b@ex.fr")
    assert outcomes[2] == ("merged", [])


def test_a_later_row_completes_a_person_created_in_the_same_batch():
    plan, _ = run_plan([row("A", phone="12", email="a@ex.fr"), row(email="A@ex.fr", org="CAF")])
    (person,) = plan.new_people()
    assert person.values["organisation"] == "CAF"
    assert (person.values["phone"], person.values["phone_raw"]) == (None, "12")
    assert "caf" in person.row()["search_text"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (row("A", phone="12"), "Numéro de téléphone illisible et aucune adresse e-mail."),
        (row("A"), "Aucun moyen de contact : ni téléphone ni adresse e-mail."),
        (row("A", email="pas-un-mail"), "Adresse e-mail invalide et aucun téléphone valide."),
        (["A", "B"], "Nombre de colonnes incorrect : 2 au lieu de 5"),
        ([*row("A", phone="0612345678"), "en trop"], "Nombre de colonnes incorrect : 6 au lieu"),
    ],
)
def test_rejection_reasons_are_in_french(fields, reason):
    with pytest.raises(RowRejected, match=reason):
        clean_row(fields, MAPPING)


def test_trailing_empty_cells_are_not_an_error():
    assert row_input([*row("A", phone="0612345678"), "", " "], MAPPING).first_name == "A"


def test_an_unreadable_email_next_to_a_good_phone_is_kept_in_the_notes():
    cleaned = clean_row(row("A", phone="0612345678", email="a@@ex"), MAPPING)
    assert cleaned.email is None and cleaned.phone == "+33612345678"
    assert cleaned.notes == "Adresse e-mail illisible à l'import : a@@ex"


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("'+33 6 12 34 56 78", "+33 6 12 34 56 78"),
        ("'=1+1", "=1+1"),
        ("'-", "-"),
        ("  Jean  ", "Jean"),
        ("'apostrophe", "'apostrophe"),
        ("l'Isle", "l'Isle"),
    ],
)
def test_the_quote_of_a_neutralised_cell_is_removed_on_import(raw, expected):
    from crm.services.import_rules import cell_value

    assert cell_value(raw) == expected
