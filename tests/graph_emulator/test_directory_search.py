"""GET /users?$search as Graph answers it: only with ConsistencyLevel: eventual, clauses
"property:value" joined by OR/AND, displayName tokenized and prefix-matched, other properties
startswith, $count, paging (Learn: "List users", "Use the $search query parameter",
"Advanced query capabilities on Microsoft Entra ID objects")."""

from __future__ import annotations

EVENTUAL = {"ConsistencyLevel": "eventual"}


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(u["displayName"] for u in response.json()["value"])


def test_search_needs_the_consistency_level_header(app_graph):
    r = app_graph.get('/users?$search="displayName:bo"')
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "Request_UnsupportedQuery" and "ConsistencyLevel: eventual" in r.json()["error"]["message"]
    assert app_graph.get("/users?$count=true").status_code == 400  # $count is an advanced query too
    assert names(app_graph.get('/users?$search="displayName:bo"', headers=EVENTUAL)) == ["Bob Berg", "Borealis", "Boris Novak"]  # a room mailbox is a user too


def test_display_name_is_tokenized_and_prefix_matched(app_graph):
    assert names(app_graph.get('/users?$search="displayName:nov"', headers=EVENTUAL)) == ["Boris Novak"]  # the second word
    assert names(app_graph.get('/users?$search="displayName:connor"', headers=EVENTUAL)) == ["Evan O'Connor"]  # after punctuation
    assert names(app_graph.get('/users?$search="displayName:ovak"', headers=EVENTUAL)) == []  # prefixes of words only
    assert names(app_graph.get('/users?$search="displayName:boris nov"', headers=EVENTUAL)) == ["Boris Novak"]  # every word


def test_other_properties_are_startswith_and_clauses_combine(app_graph):
    assert names(app_graph.get('/users?$search="mail:carol"', headers=EVENTUAL)) == ["Carol Chen"]
    assert names(app_graph.get('/users?$search="mail:chen"', headers=EVENTUAL)) == []  # the whole value's start
    both = app_graph.get('/users?$search="displayName:dora" OR "mail:carol"&$count=true&$select=displayName,mail', headers=EVENTUAL)
    assert names(both) == ["Carol Chen", "Dora Diaz"] and both.json()["@odata.count"] == 2
    assert set(both.json()["value"][0]) == {"id", "displayName", "mail"}
    assert names(app_graph.get('/users?$search="displayName:bo" AND "mail:boris"', headers=EVENTUAL)) == ["Boris Novak"]


def test_bad_search_syntax_is_a_400(app_graph):
    for bad in ("displayName:bo", '"bo"', '"displayName:bo" OR', '"nosuch:bo"', '"displayName:bo" XOR "mail:b"'):
        r = app_graph.get(f"/users?$search={bad}", headers=EVENTUAL)
        assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery", bad


def test_search_results_page(app_graph):
    first = app_graph.get('/users?$search="mail:b" OR "mail:c" OR "mail:d"&$top=2', headers=EVENTUAL).json()
    assert len(first["value"]) == 2 and "@odata.nextLink" in first
    seen, body = [], first
    while True:
        assert len(body["value"]) <= 2
        seen += [u["displayName"] for u in body["value"]]
        if "@odata.nextLink" not in body:
            break
        body = app_graph.get(body["@odata.nextLink"], headers=EVENTUAL).json()
    assert len(seen) == len(set(seen)) and set(seen) >= {"Bob Berg", "Boris Novak", "Carol Chen", "Dora Diaz"}
