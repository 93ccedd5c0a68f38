"""Workshop groups (pure function): a table of cases, then the promises as properties."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.services.grouping import (
    FEW_PEOPLE_WARNING,
    MAX_SIZE,
    MIN_SIZE,
    NOBODY_WARNING,
    Grouping,
    Member,
    group_count,
    same_key,
    split_into_groups,
)


def members(organisations: Sequence[str], profiles: Sequence[str] | None = None) -> list[Member]:
    profiles = profiles or [""] * len(organisations)
    return [Member(i, o, p) for i, (o, p) in enumerate(zip(organisations, profiles, strict=True))]


def sizes(grouping: Grouping) -> list[int]:
    return [len(group) for group in grouping.groups]


def counts_per_group(
    people: Sequence[Member], grouping: Grouping, field: str
) -> dict[str, list[int]]:
    """For each non-empty (normalised) organisation or profile: how many in each group."""
    key_of = {p.id: same_key(getattr(p, field)) for p in people}
    result: dict[str, list[int]] = {}
    for number, group in enumerate(grouping.groups):
        for person_id in group:
            key = key_of[person_id]
            if key:
                result.setdefault(key, [0] * len(grouping.groups))[number] += 1
    return result


# --- the number of groups -------------------------------------------------------------------


@pytest.mark.parametrize(
    "n,target,expected",
    [
        (0, 8, 0),
        (1, 8, 1),
        (4, 8, 1),
        (5, 8, 1),
        (10, 8, 1),
        (10, 5, 2),  # 5 + 5 is exactly the target
        (11, 8, 2),  # 6 + 5: one group of 11 is too big
        (14, 10, 2),  # 7 + 7: a group of 10 and one of 4 would be too small
        (16, 8, 2),
        (20, 8, 3),  # 7 + 7 + 6 is closer to 8 than 10 + 10
        (24, 8, 3),
        (24, 5, 4),  # 6 each: 5 groups would need 4.8
        (30, 10, 3),
        (31, 10, 4),
        (40, 8, 5),
        (99, 10, 10),
        (100, 10, 10),
    ],
)
def test_group_count(n: int, target: int, expected: int) -> None:
    assert group_count(n, target) == expected


@given(n=st.integers(min_value=MIN_SIZE, max_value=2000), target=st.integers(MIN_SIZE, MAX_SIZE))
def test_every_count_of_5_or_more_fits_within_bounds_as_close_to_the_target_as_allowed(
    n: int, target: int
) -> None:
    k = group_count(n, target)
    assert n // k >= MIN_SIZE and -(-n // k) <= MAX_SIZE
    allowed = [j for j in range(1, n + 1) if n // j >= MIN_SIZE and -(-n // j) <= MAX_SIZE]
    assert abs(Fraction(n, k) - target) == min(abs(Fraction(n, j) - target) for j in allowed)


# --- a table of cases -----------------------------------------------------------------------


def test_nobody_gives_no_group_and_a_warning() -> None:
    assert split_into_groups([]) == Grouping((), NOBODY_WARNING)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_fewer_than_5_people_give_one_group_and_a_warning(n: int) -> None:
    grouping = split_into_groups(members(["CAF"] * n))
    assert grouping.groups == (tuple(range(n)),)
    assert grouping.warning == "Moins de 5 participants : un seul groupe."
    assert grouping.warning == FEW_PEOPLE_WARNING


def test_five_to_ten_people_make_one_group_without_warning() -> None:
    for n in range(5, 11):
        grouping = split_into_groups(members(["CAF"] * n))
        assert sizes(grouping) == [n]
        assert grouping.warning is None


def test_colleagues_are_spread_over_the_groups() -> None:
    # 16 people, 2 groups of 8: the 4 from the town hall go 2 and 2, the 2 from the CAF apart.
    organisations = ["Mairie"] * 4 + ["CAF"] * 2 + [""] * 10
    grouping = split_into_groups(members(organisations), 8)
    assert sizes(grouping) == [8, 8]
    counts = counts_per_group(members(organisations), grouping, "organisation")
    assert counts == {"mairie": [2, 2], "caf": [1, 1]}


def test_case_accents_and_spaces_do_not_make_another_organisation() -> None:
    organisations = ["Mairie de Lyon", " mairie  de lyon ", "MAIRIE DE LYÔN"] + [""] * 12
    grouping = split_into_groups(members(organisations), 5)
    assert sizes(grouping) == [5, 5, 5]
    counts = counts_per_group(members(organisations), grouping, "organisation")
    assert counts == {"mairie de lyon": [1, 1, 1]}


def test_people_without_organisation_are_not_colleagues() -> None:
    # Ten people without organisation and two colleagues: only the colleagues are kept apart.
    organisations = [""] * 10 + ["France Travail"] * 2
    grouping = split_into_groups(members(organisations), 6)
    assert sizes(grouping) == [6, 6]
    assert counts_per_group(members(organisations), grouping, "organisation") == {
        "france travail": [1, 1]
    }


def test_profiles_are_spread_too() -> None:
    profiles = ["Agent d'accueil"] * 3 + ["Usager"] * 9 + ["Élu"] * 3
    grouping = split_into_groups(members([""] * 15, profiles), 5)
    counts = counts_per_group(members([""] * 15, profiles), grouping, "profile")
    assert counts == {"agent d'accueil": [1, 1, 1], "usager": [3, 3, 3], "elu": [1, 1, 1]}


def test_profiles_are_spread_inside_an_organisation() -> None:
    people = members(["CAF"] * 10, ["agent"] * 5 + ["usager"] * 5)
    grouping = split_into_groups(people, 5)
    assert counts_per_group(people, grouping, "profile") == {"agent": [3, 2], "usager": [2, 3]}


def test_a_big_organisation_cannot_be_kept_apart_but_is_spread_evenly() -> None:
    # 12 people from the same prefecture in 3 groups: 4 in each, not 6, 4 and 2.
    people = members(["Préfecture"] * 12 + [""] * 9)
    grouping = split_into_groups(people, 7)
    assert sizes(grouping) == [7, 7, 7]
    assert counts_per_group(people, grouping, "organisation") == {"prefecture": [4, 4, 4]}


def test_the_same_input_gives_the_same_groups_in_any_order() -> None:
    people = members(["A", "B", "A", "", "C", "B", "A", "", "C", "D", "A", "B"])
    grouping = split_into_groups(people)
    assert split_into_groups(list(reversed(people))) == grouping
    assert split_into_groups(people) == grouping


@pytest.mark.parametrize("target", [4, 11, 0])
def test_a_target_outside_5_to_10_is_a_programming_error(target: int) -> None:
    with pytest.raises(ValueError):
        split_into_groups(members(["A"] * 6), target)


def test_duplicate_ids_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        split_into_groups([Member(1), Member(1)])


# --- properties -----------------------------------------------------------------------------

# Few names, with variants of case, accents and spaces, so that colleagues are frequent.
ORGANISATIONS = st.sampled_from(
    ["", " ", "CAF", "caf ", "Mairie", "MAIRIE", "Mâirie", "Préfecture", "prefecture", "Asso"]
    + [f"Structure {i}" for i in range(8)]
)
PROFILES = st.sampled_from(["", "Usager", "usager", "Agent", "agent d'accueil", "Élu", "Elu "])


@st.composite
def crowds(draw: st.DrawFn, max_size: int = 90) -> list[Member]:
    pairs = draw(st.lists(st.tuples(ORGANISATIONS, PROFILES), max_size=max_size))
    ids = draw(st.permutations(range(1000, 1000 + len(pairs))))
    return [Member(i, o, p) for i, (o, p) in zip(ids, pairs, strict=True)]


TARGETS = st.integers(MIN_SIZE, MAX_SIZE)


@settings(max_examples=300)
@given(people=crowds(), target=TARGETS)
def test_every_person_is_in_exactly_one_group(people: list[Member], target: int) -> None:
    grouping = split_into_groups(people, target)
    placed = [person_id for group in grouping.groups for person_id in group]
    assert sorted(placed) == sorted(p.id for p in people)
    assert all(group for group in grouping.groups)


@settings(max_examples=300)
@given(people=crowds(), target=TARGETS)
def test_sizes_stay_within_bounds_and_differ_by_at_most_one(
    people: list[Member], target: int
) -> None:
    grouping = split_into_groups(people, target)
    assert len(grouping.groups) == group_count(len(people), target)
    if len(people) >= MIN_SIZE:
        assert all(MIN_SIZE <= size <= MAX_SIZE for size in sizes(grouping))
        assert grouping.warning is None
    else:
        assert len(grouping.groups) == min(len(people), 1)
        assert grouping.warning is not None
    if grouping.groups:
        assert max(sizes(grouping)) - min(sizes(grouping)) <= 1


@settings(max_examples=300)
@given(people=crowds(), target=TARGETS)
def test_each_organisation_is_spread_evenly(people: list[Member], target: int) -> None:
    grouping = split_into_groups(people, target)
    for counts in counts_per_group(people, grouping, "organisation").values():
        assert max(counts) - min(counts) <= 1


@settings(max_examples=300)
@given(people=crowds(), target=TARGETS)
def test_no_two_colleagues_share_a_group_when_that_can_be_avoided(
    people: list[Member], target: int
) -> None:
    grouping = split_into_groups(people, target)
    per_organisation = Counter(same_key(p.organisation) for p in people)
    for key, counts in counts_per_group(people, grouping, "organisation").items():
        if per_organisation[key] <= len(grouping.groups):
            assert max(counts) <= 1, key


@settings(max_examples=300)
@given(
    people=crowds(max_size=90).map(lambda ps: [Member(p.id, "", p.profile) for p in ps]),
    target=TARGETS,
)
def test_without_colleagues_each_profile_is_spread_evenly(
    people: list[Member], target: int
) -> None:
    # Profiles are spread as well as organisations allow: fully when no one has a colleague.
    grouping = split_into_groups(people, target)
    for counts in counts_per_group(people, grouping, "profile").values():
        assert max(counts) - min(counts) <= 1


@settings(max_examples=200)
@given(people=crowds(), target=TARGETS, data=st.data())
def test_the_order_of_the_people_does_not_matter(
    people: list[Member], target: int, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(people))
    assert split_into_groups(shuffled, target) == split_into_groups(people, target)
