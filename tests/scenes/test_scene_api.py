"""Scenes over REST (in-process app, prompt-recording fake backend): cast and presence, who answers,
witnessed-only prompts, game state, events, actions, ownership and bad input."""

from __future__ import annotations

import json

from conftest import GIVE, App

SECRET = "The key is under the third stone."


def _scene(app: App, who: str = "alice", **extra: object) -> dict:
    body = {"characters": ["ember", "vellum"], "user_name": "Kai", "actions": [GIVE], **extra}
    answer = app.http.post("/v1/scenes", json=body, headers=app.as_(who))
    assert answer.status_code == 201, answer.text
    return answer.json()


def _post(app: App, path: str, body: dict, who: str = "alice") -> dict:
    answer = app.http.post(path, json=body, headers=app.as_(who))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _error(answer, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    if code is not None:
        assert error["code"] == code, error
    return error


def test_a_player_line_is_answered_by_who_it_names_and_knowledge_stays_with_witnesses(app: App) -> None:
    scene = _scene(app)
    sid = scene["id"]
    assert [m["id"] for m in scene["members"]] == ["ember", "vellum"]
    assert scene["members"][0]["actions"] == ["give_item"]
    left = _post(app, f"/v1/scenes/{sid}/leave", {"character": "Vellum"})
    assert [m["present"] for m in left["members"]] == [True, False]
    told = _post(app, f"/v1/scenes/{sid}/lines", {"content": f"Ember, listen. {SECRET}"})
    assert [r["character_id"] for r in told["replies"]] == ["ember"]
    assert [m["role"] for m in told["messages"]] == ["user", "assistant"]
    assert SECRET in app.backend.reply_prompts()[-1]
    _post(app, f"/v1/scenes/{sid}/join", {"character": "vellum"})
    asked = _post(app, f"/v1/scenes/{sid}/lines", {"content": "What do you know of keys?", "character": "vellum"})
    assert [r["name"] for r in asked["replies"]] == [app.http.get(f"/v1/scenes/{sid}", headers=app.as_("alice"))
                                                    .json()["scene"]["members"][1]["name"]]
    vellum_prompt = app.backend.reply_prompts()[-1]
    assert SECRET not in vellum_prompt and "What do you know of keys?" in vellum_prompt
    seen = app.http.get(f"/v1/scenes/{sid}/witnessed/vellum", headers=app.as_("alice")).json()
    assert not any(SECRET in m["content"] for m in seen["messages"])
    assert any(SECRET in m["content"] for m in
               app.http.get(f"/v1/scenes/{sid}/witnessed/ember", headers=app.as_("alice")).json()["messages"])
    spoke = _post(app, f"/v1/scenes/{sid}/speak", {"character": "ember"})
    assert [m["role"] for m in spoke["messages"]] == ["assistant"]


def test_replies_stream_with_speaker_expression_and_actions(app: App) -> None:
    sid = _scene(app)["id"]
    app.backend.choice = {"actions": [{"name": "give_item", "arguments": {"item": "bread"}},
                                      {"name": "fly", "arguments": {}},
                                      {"name": "give_item", "arguments": {"item": "gold"}}]}
    with app.http.stream("POST", f"/v1/scenes/{sid}/lines", headers=app.as_("alice"),
                         json={"content": "Ember and Vellum, hello!", "stream": True}) as answer:
        assert answer.status_code == 200
        events = [line[6:] for line in answer.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    payloads = [json.loads(e) for e in events[:-1]]
    deltas = [p for p in payloads if "delta" in p]
    assert {p["speaker"] for p in deltas} == {"ember", "vellum"}
    replies = [p["reply"] for p in payloads if "reply" in p]
    assert [r["character_id"] for r in replies] == ["ember", "vellum"]
    for reply in replies:
        assert reply["actions"] == [{"name": "give_item", "arguments": {"item": "bread"}}]
        assert [r["name"] for r in reply["refused_actions"]] == ["fly", "give_item"]
        assert "expression" in reply
    assert app.backend.schemas[-1]["properties"]["actions"]["items"]["anyOf"][0]["properties"]["name"] == {
        "const": "give_item"}
    turn = payloads[-1]["turn"]
    stored = [m for m in turn["messages"] if m["role"] == "assistant"]
    assert [m["meta"]["actions"] for m in stored] == [[{"name": "give_item", "arguments": {"item": "bread"}}]] * 2


def test_game_state_is_versioned_per_branch_and_enters_the_late_block(app: App) -> None:
    sid = _scene(app, state={"location": "the forge", "nearby_objects": ["anvil"]})["id"]
    first = _post(app, f"/v1/scenes/{sid}/lines", {"content": "Hello Ember.", "state": {"weather": "rain"}})
    state = app.http.get(f"/v1/scenes/{sid}/state", headers=app.as_("alice")).json()
    assert state["state"]["location"] == "the forge" and state["state"]["weather"] == "rain"
    assert "Weather: rain" in state["prompt_note"]
    prompt = app.backend.prompts[-1]
    late = [m for m in prompt if state["prompt_note"] in m.content]
    assert [m.kind for m in late] == ["late"] and prompt.index(late[0]) > 1  # after the history: prefix untouched
    put = app.http.put(f"/v1/scenes/{sid}/state", json={"weather": "snow", "inventory": ["sword"]},
                       headers=app.as_("alice")).json()
    assert put["state"]["weather"] == "snow" and put["state"]["location"] == "the forge"
    user_id = first["messages"][0]["id"]
    _post(app, f"/v1/sessions/{sid}/branch", {"message_id": user_id})
    back = app.http.get(f"/v1/scenes/{sid}/state", headers=app.as_("alice")).json()
    assert back["state"]["weather"] == "rain" and back["state"]["inventory"] == []


def test_events_are_stored_witnessed_and_reacted_to_by_policy(app: App) -> None:
    sid = _scene(app, policies={"vellum": {"threshold": 0.3}})["id"]
    quiet = _post(app, f"/v1/scenes/{sid}/events", {"content": "A cart rolls by.", "salience": 0.1})
    assert quiet["replies"] == [] and quiet["messages"][0]["role"] == "event"
    loud = _post(app, f"/v1/scenes/{sid}/events", {"content": "Thunder cracks overhead.", "salience": 0.4})
    assert [r["character_id"] for r in loud["replies"]] == ["vellum"]
    assert "[Event] Thunder cracks overhead." in app.backend.reply_prompts()[-1]
    named = _post(app, f"/v1/scenes/{sid}/events", {"content": "A child tugs at Ember's sleeve."})
    assert [r["character_id"] for r in named["replies"]] == ["ember"]
    aimed = _post(app, f"/v1/scenes/{sid}/events", {"content": "A coin lands at your feet.", "addressed": ["vellum"]})
    assert [r["character_id"] for r in aimed["replies"]] == ["vellum"]
    _post(app, f"/v1/scenes/{sid}/leave", {"character": "ember"})
    _post(app, f"/v1/scenes/{sid}/leave", {"character": "vellum"})
    _error(app.http.post(f"/v1/scenes/{sid}/events", json={"content": "Night falls."}, headers=app.as_("alice")),
           404, "scene_empty")


def test_a_refused_action_reaches_the_characters_next_prompt(app: App) -> None:
    sid = _scene(app)["id"]
    app.backend.choice = {"actions": [{"name": "give_item", "arguments": {"item": "key"}}]}
    reply = _post(app, f"/v1/scenes/{sid}/lines", {"content": "Ember, the key please.", "character": "ember"})
    message_id = reply["replies"][0]["message_id"]
    result = {"result": {"message_id": message_id, "index": 0, "ok": False, "reason": "the key is rusted shut"},
              "addressed": ["ember"]}
    verdict = _post(app, f"/v1/scenes/{sid}/events", result)
    assert verdict["messages"][0]["meta"]["action_result"]["ok"] is False
    assert "give_item(item=key) failed: the key is rusted shut" in app.backend.reply_prompts()[-1]
    _error(app.http.post(f"/v1/scenes/{sid}/events", headers=app.as_("alice"),
                         json={"result": {"message_id": message_id, "index": 5, "ok": True}}), 400, "invalid_action")


def test_bad_input_is_a_400_naming_the_problem(app: App) -> None:
    def create(**body: object):
        return app.http.post("/v1/scenes", json={"characters": ["ember", "vellum"], **body}, headers=app.as_("alice"))

    assert "nobody" in _error(create(characters=["ember", "nobody"]), 400, "unknown_character")["message"]
    bad_schema = {"type": "function", "function": {"name": "jump", "parameters": {"type": "object",
                                                                                  "properties": {"h": {"type": 5}}}}}
    error = _error(create(actions=[bad_schema]), 400, "invalid_action_schema")
    assert error["param"] == "actions[0].parameters" and "jump" in error["message"]
    too_many = {"nearby_objects": [f"thing {i}" for i in range(101)]}
    assert "100" in _error(create(state=too_many), 400)["message"]
    deep = {"extra": {"a": {"b": {"c": {"d": {"e": 1}}}}}}
    assert "limit is 4" in _error(create(state=deep), 400)["message"]
    big = {"extra": {"blob": "x" * 5000}}
    assert "limit is 4096" in _error(create(state=big), 400)["message"]
    sid = _scene(app)["id"]
    _error(app.http.post(f"/v1/scenes/{sid}/lines", json={"content": "hi", "character": "mara"},
                         headers=app.as_("alice")), 400, "unknown_member")
    _error(app.http.post(f"/v1/scenes/{sid}/lines", json={"content": ""}, headers=app.as_("alice")), 400)


def test_a_scene_belongs_to_its_caller(app: App) -> None:
    sid = _scene(app)["id"]
    assert app.http.get(f"/v1/scenes/{sid}", headers=app.as_("bob")).status_code == 404
    _error(app.http.post(f"/v1/scenes/{sid}/lines", json={"content": "hi"}, headers=app.as_("bob")), 404)
    _error(app.http.post(f"/v1/scenes/{sid}/events", json={"content": "hi"}, headers=app.as_("bob")), 404)
    assert app.http.get(f"/v1/scenes/{sid}/state", headers=app.as_("bob")).status_code == 404
    plain = app.http.post("/v1/sessions", json={"character": "ember"}, headers=app.as_("alice")).json()["id"]
    assert app.http.get(f"/v1/scenes/{plain}", headers=app.as_("alice")).status_code == 404
