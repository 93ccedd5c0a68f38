"""Workshop groups: split people into groups of 5 to 10, spreading organisations and profiles.

A pure function (no database, no Flask), so that its promises are checked by property tests
(tests/unit/test_grouping.py):

- every person is in exactly one group;
- with n >= 5 people, every group holds 5 to 10 people, and sizes differ by at most 1
  (such a number of groups always exists: see group_count);
- for each organisation of m people spread over k groups, every group holds m // k or
  m // k + 1 of them: no group holds two people of one organisation when m <= k;
- the same input gives the same groups, whatever the order of the people.

How: organisations are placed one after another, largest first. An organisation of m people
gives m // k to every group, and its m % k extra people go to the smallest groups, which keeps
the sizes within 1 of each other. Inside these quotas, each person goes to the group with the
fewest people of their profile. An empty organisation or profile is nobody's: two people
without an organisation are not "from the same organisation".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from crm.services.normalise import fold

MIN_SIZE = 5
MAX_SIZE = 10
DEFAULT_SIZE = 8
FEW_PEOPLE_WARNING = "Moins de 5 participants : un seul groupe."
NOBODY_WARNING = "Aucun participant à répartir."


@dataclass(frozen=True)
class Member:
    """One person to place: an id (the caller's), their organisation and profile as typed."""

    id: int
    organisation: str = ""
    profile: str = ""


@dataclass(frozen=True)
class Grouping:
    """Groups of ids (group 1 first, ids in ascending order) and a warning in French, if any."""

    groups: tuple[tuple[int, ...], ...]
    warning: str | None = None


def same_key(text: str) -> str:
    """What makes two organisations (or profiles) the same: case, accents and spaces aside."""
    return " ".join(fold(text).split())


def group_count(n: int, target_size: int) -> int:
    """How many groups for n people: sizes within 5..10, average size closest to the target.

    With k groups of sizes differing by at most 1, sizes are n // k and ceil(n / k); both are
    within bounds when ceil(n / 10) <= k <= n // 5. That range is never empty for n >= 5:
    k = ceil(n / 10) is 1 for n <= 10, and for n > 10 (k >= 2), n >= 10(k - 1) + 1 >= 5k.
    Ties go to fewer, larger groups.
    """
    if n < MIN_SIZE:
        return 1 if n else 0
    fewest, most = -(-n // MAX_SIZE), n // MIN_SIZE
    return min(range(fewest, most + 1), key=lambda k: (abs(Fraction(n, k) - target_size), k))


def split_into_groups(people: Sequence[Member], target_size: int = DEFAULT_SIZE) -> Grouping:
    """Split `people` into workshop groups aiming at `target_size` people (5 to 10)."""
    if not MIN_SIZE <= target_size <= MAX_SIZE:
        raise ValueError(f"target_size must be between {MIN_SIZE} and {MAX_SIZE}")
    if len({person.id for person in people}) != len(people):
        raise ValueError("member ids must be unique")
    if not people:
        return Grouping((), NOBODY_WARNING)
    board = _Board(group_count(len(people), target_size), people)
    for organisation in _organisations(people, board.profile_sizes):
        board.place(organisation)
    groups = tuple(tuple(sorted(ids)) for ids in board.members)
    return Grouping(groups, FEW_PEOPLE_WARNING if len(people) < MIN_SIZE else None)


class _Board:
    """The groups being filled: who is in each, and how many of each profile."""

    def __init__(self, count: int, people: Sequence[Member]) -> None:
        self.members: list[list[int]] = [[] for _ in range(count)]
        self.profiles: list[Counter[str]] = [Counter() for _ in range(count)]
        self.profile_sizes = Counter(same_key(p.profile) for p in people if same_key(p.profile))

    def place(self, organisation: list[Member]) -> None:
        """Every group gets m // k of the organisation; the m % k extras go to the smallest
        groups, so sizes stay within 1 of each other (before: sizes s and s + 1; after too)."""
        base, extras = divmod(len(organisation), len(self.members))
        quota = [base] * len(self.members)
        for group in self._groups_for_extras(organisation, extras):
            quota[group] += 1
        for person in organisation:
            profile = same_key(person.profile)
            group = min(
                (g for g in range(len(quota)) if quota[g]),
                key=lambda g: (self._same_profile(g, profile), len(self.members[g]), g),
            )
            quota[group] -= 1
            self.members[group].append(person.id)
            if profile:
                self.profiles[group][profile] += 1

    def _groups_for_extras(self, organisation: list[Member], extras: int) -> list[int]:
        """The smallest groups first (all of them if needed), then among equals those with
        the fewest people sharing the organisation's profiles."""
        profiles = [same_key(p.profile) for p in organisation]
        smallest = min(len(members) for members in self.members)

        def preference(g: int) -> tuple[int, int, int]:
            load = sum(self._same_profile(g, profile) for profile in profiles)
            return (len(self.members[g]) - smallest, load, g)

        return sorted(range(len(self.members)), key=preference)[:extras]

    def _same_profile(self, group: int, profile: str) -> int:
        return self.profiles[group][profile] if profile else 0


def _organisations(people: Sequence[Member], profile_sizes: Counter[str]) -> list[list[Member]]:
    """People by organisation, largest organisation first; someone without an organisation
    is an organisation of one. People of one organisation, and organisations of one person,
    are ordered by profile (most frequent first), so that a profile's people come together."""
    named: dict[str, list[Member]] = {}
    alone: list[list[Member]] = []
    for person in people:
        key = same_key(person.organisation)
        if key:
            named.setdefault(key, []).append(person)
        else:
            alone.append([person])

    def by_profile(person: Member) -> tuple[int, str, int]:
        profile = same_key(person.profile)
        return (-profile_sizes[profile] if profile else 0, profile, person.id)

    def by_size(item: tuple[str, list[Member]]) -> tuple[int, str, tuple[int, str, int]]:
        key, members = item
        if len(members) == 1:  # nobody to keep apart: order these by profile only
            return (-1, "", by_profile(members[0]))
        return (-len(members), key, (0, "", 0))

    clusters = [(key, sorted(members, key=by_profile)) for key, members in named.items()]
    clusters += [("", members) for members in alone]
    return [members for _, members in sorted(clusters, key=by_size)]
