"""Every page of the app, as an admin sees it: markup that assistive technologies rely on.

RGAA 8.2 (valid code: an id is unique in its page), 8.5 and 8.6 (a title), 9.1 (one <h1>).
A duplicated id breaks the links of the error summary and the labels of form fields.
"""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

from tests.integration.test_roles import client_for, seed, url_of


class Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: Counter[str] = Counter()
        self.tags: Counter[str] = Counter()
        self.in_title = False
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.in_title = tag == "title"
        for name, value in attrs:
            if name == "id" and value:
                self.ids[value] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data


def test_every_page_has_unique_ids_a_title_and_one_h1(app, make_user):
    ids = seed(app)
    client = client_for(app, make_user, "admin")
    pages = 0
    problems = []
    urls = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" in (rule.methods or ()) and rule.endpoint not in ("static", "auth.logout"):
            urls.append(url_of(rule, ids))
    # The seeded registration is confirmed in a lab under way; the other one is a person to
    # call in a recruiting lab, whose call page holds the most forms.
    urls.append(f"/appels/inscriptions/{ids.other_registration_id}")
    for url in urls:
        response = client.get(url)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        html = response.get_data(as_text=True)
        if not html.lstrip().lower().startswith("<!doctype html>"):
            continue  # a fragment (search results, live counts): part of a page checked here
        pages += 1
        markup = Markup()
        markup.feed(html)
        twice = sorted(name for name, n in markup.ids.items() if n > 1)
        if twice:
            problems.append(f"{url}: id used more than once: {', '.join(twice)}")
        if markup.tags["h1"] != 1:
            problems.append(f"{url}: {markup.tags['h1']} <h1>")
        if not markup.title.strip().endswith("Open Lab CRM"):
            problems.append(f"{url}: title {markup.title!r}")
    assert pages >= 30
    assert not problems, "\n".join(problems)
