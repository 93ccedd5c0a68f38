"""`flask crm funnel` on the hand-built data set of test_funnel.py: JSON and CSV on stdout,
French messages and exit code 2 on bad options."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.integration.test_funnel import data  # noqa: F401  (the fixture)


def run(app, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=["crm", "funnel", *args])


def test_json_per_source(app, data):  # noqa: F811
    result = run(app, "--by", "source", "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["by"] == "source" and body["lab"] is None
    rows = {row["label"]: row for row in body["rows"]}
    assert list(rows["Annuaire"]["counts"].values()) == [5, 4, 3, 3, 2, 2, 1, 2]
    assert rows["Salon"]["rates"]["reached"] == 75
    assert rows["Salon"]["no_show_rate"] == 100 and rows["Salon"]["opt_out_rate"] == 25
    assert body["total"]["counts"]["invited"] == 9
    assert [step["label"] for step in body["steps"]][:2] == ["Invités", "Contactés"]


def test_json_for_one_lab_per_caller_and_a_period(app, data):  # noqa: F811
    result = run(app, "--lab", str(data["lab1"].id), "--by", "caller", "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["lab"] == data["lab1"].id
    assert {row["label"] for row in body["rows"]} == {"alice@test.fr", "bob@test.fr"}
    empty = run(app, "--from", "2001-01-01", "--to", "2001-12-31")
    assert empty.exit_code == 0 and json.loads(empty.stdout)["rows"] == []
    assert json.loads(empty.stdout)["from"] == "2001-01-01"


def test_csv_per_lab(app, data):  # noqa: F811
    result = run(app, "--by", "lab", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(result.stdout.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:2] == ["Open lab", "Invités"] and rows[0][-1] == "Taux de désinscription (%)"
    labels = {row[0]: row for row in rows[1:]}
    assert labels["Lab 2"][1] == "1" and labels["Lab"][1] == "8" and labels["Total"][1] == "9"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--by", "pays"], "--by : « pays » inconnu"),
        (["--format", "xml"], "--format : « xml » inconnu"),
        (["--lab", "abc"], "n'est pas un numéro d'open lab"),
        (["--lab", "999999"], "l'open lab n° 999999 n'existe pas"),
        (["--from", "2025-13-01"], "--from : Saisissez une date"),
        (["--to", "hier"], "--to : Saisissez une date"),
        (["--from", "2025-03-10", "--to", "2025-03-09"], "--to doit être le même jour"),
    ],
)
def test_bad_options_get_a_french_message_and_exit_code_2(app, data, args, message):  # noqa: F811
    result = run(app, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Erreur :" in result.stderr and result.stdout == ""
