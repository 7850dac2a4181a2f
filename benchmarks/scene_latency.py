"""Scene reply latency, action validity and the game-state prompt overhead, on the bundled model.

Run: .venv/bin/python benchmarks/scene_latency.py [--max-tokens 16] [--lines 3] [--threads 2] [--skip-concurrent]

1. One NPC: a scene with Ember alone, --lines player lines; time to first token and full reply per reply
   (the reply's own timing as stored in its meta).
2. Eight NPCs in one scene: eight generated villagers, everyone answers one line in list order (each
   NPC's KV prefix is parked and restored under its own cache key); per reply, and the whole round.
3. Eight concurrent scenes: a real `rolecraft serve` on 127.0.0.1, eight clients each posting one
   streamed line to its own scene at once; first token and full reply as each client sees it.
4. Action validity: the same replies' action choice with the grammar on (json_schema → llama.cpp grammar)
   and off (free text parsed as JSON): the share whose output parses and validates against the schema.
5. Prompt overhead of the game-state block with 50 nearby objects: prompt tokens with and without it.
Actions are off in 1-3 (text only); 4 isolates them. Timings on a shared machine: note the load.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from _common import median, percentile, temp_settings

from rolecraft.characters.model import Character
from rolecraft.conversation import Engine
from rolecraft.conversation.scene import GameState, choose_actions, create_scene, declare_actions
from rolecraft.settings import Settings

VILLAGERS = ["Aldric", "Bryn", "Corra", "Dunstan", "Elowen", "Fenwick", "Gilda", "Hale"]
ACTIONS = declare_actions([
    {"name": "give_item", "description": "Hand the player an item.", "parameters": {
        "type": "object", "required": ["item"], "properties": {"item": {"type": "string",
                                                                        "enum": ["bread", "herbs", "coin"]}}}},
    {"name": "follow", "description": "Follow someone.", "parameters": {
        "type": "object", "required": ["target"], "properties": {"target": {"type": "string", "maxLength": 20}}}},
], "actions")
LINES = ["Good evening! Could you spare some bread?", "What news from the hills?", "Will you follow me to the well?",
         "I need herbs for a wound.", "Is the north gate open tonight?", "Can I have a coin for the ferry?"]


def add_villagers(engine: Engine) -> list[str]:
    ids = []
    for name in VILLAGERS:
        char_id = name.lower()
        character = Character(name=name, description=f"{name} is a villager of Thornbury.",
                              personality="plain-spoken, helpful", first_mes=f"*{name} nods.* Evening.")
        engine.store.put_character(character, char_id=char_id)
        ids.append(char_id)
    return ids


def summary(label: str, ttft: list[float], total: list[float]) -> dict:
    row = {"case": label, "replies": len(total), "ttft_p50_ms": round(median(ttft)),
           "ttft_p95_ms": round(percentile(ttft, 95)), "full_p50_ms": round(median(total)),
           "full_p95_ms": round(percentile(total, 95))}
    print(json.dumps(row), flush=True)
    return row


def one_npc(engine: Engine, lines: int) -> dict:
    scene = create_scene(engine, ["ember"])
    ttft, total = [], []
    for text in LINES[:lines]:
        for turn in scene.say(f"Ember, {text}"):
            turn.text()
            meta = turn.result.messages[-1].meta  # type: ignore[union-attr]
            ttft.append(meta["ttft_ms"])
            total.append(meta["total_ms"])
    return summary("1 NPC, one scene", ttft, total)


def eight_npcs(engine: Engine, ids: list[str]) -> dict:
    scene = create_scene(engine, ids)
    ttft, total, start = [], [], time.perf_counter()
    for turn in scene.send_group("Good evening, everyone! Any news?"):
        turn.text()
        meta = turn.result.messages[-1].meta  # type: ignore[union-attr]
        ttft.append(meta["ttft_ms"])
        total.append(meta["total_ms"])
    row = summary("8 NPCs, one scene, one round", ttft, total)
    row["round_ms"] = round((time.perf_counter() - start) * 1000)
    print(json.dumps({"case": "8 NPCs round (all replies)", "round_ms": row["round_ms"]}), flush=True)
    return row


def action_validity(engine: Engine, samples: int) -> list[dict]:
    scene = create_scene(engine, ["ember"])
    rows = []
    for grammar in (True, False):
        valid = 0
        for text in LINES[:samples]:
            plan, _ = scene.plan(scene.recent(), scene.perceive(text), scene.character)
            choice = choose_actions(engine.backend, plan.messages, "Ember", "*She nods.* Aye, that I can do.",
                                    ACTIONS, grammar=grammar, cache_key=f"bench-actions-{grammar}")
            valid += not choice.refused
        row = {"case": f"action validity, grammar {'on' if grammar else 'off'}", "valid": valid, "of": samples,
               "rate": round(valid / samples, 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def state_overhead(engine: Engine) -> dict:
    scene = create_scene(engine, ["ember"])
    new = scene.perceive("What do you see around here?")
    bare, _ = scene.plan(scene.recent(), new, scene.character)
    state = GameState(location="Thornbury village square", time_of_day="evening", weather="light snow",
                      nearby_objects=[f"crate {i}" for i in range(50)], player={"health": 7, "gold": 3},
                      inventory=["walking stick", "flask"], flags={"wolves_sighted": True})
    new.meta["game_state"] = state.model_dump(exclude_defaults=True)
    full, _ = scene.plan(scene.recent(), new, scene.character)
    row = {"case": "game state block, 50 objects", "prompt_tokens_without": bare.prompt_tokens,
           "prompt_tokens_with": full.prompt_tokens, "overhead_tokens": full.prompt_tokens - bare.prompt_tokens,
           "prefix_messages_unchanged": full.messages[:2] == bare.messages[:2]}
    print(json.dumps(row), flush=True)
    return row


def concurrent_scenes(settings: Settings, count: int, max_tokens: int) -> dict:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "ROLECRAFT_HOME": str(settings.home), "ROLECRAFT_MAX_TOKENS": str(max_tokens),
           "ROLECRAFT_TEMPERATURE": "0", "ROLECRAFT_N_THREADS": str(settings.n_threads), "ROLECRAFT_OFFLINE": "1",
           "ROLECRAFT_STATE_TRACKING": "off", "ROLECRAFT_LONG_TERM_MEMORY": "false"}
    exe = Path(sys.executable).with_name("rolecraft")
    server = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url)
        with httpx.Client(base_url=url, timeout=900) as http:
            scenes = [http.post("/v1/scenes", json={"characters": [VILLAGERS[i].lower()]}).json()["id"]
                      for i in range(count)]
        ttft, total = [0.0] * count, [0.0] * count
        threads = [threading.Thread(target=_client, args=(url, sid, i, ttft, total)) for i, sid in enumerate(scenes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=1800)
        return summary(f"{count} concurrent scenes (client side)", ttft, total)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit("rolecraft serve did not start")


def _client(url: str, scene_id: str, index: int, ttft: list[float], total: list[float]) -> None:
    start = time.perf_counter()
    with httpx.stream("POST", f"{url}/v1/scenes/{scene_id}/lines", timeout=1800,
                      json={"content": "Good evening! Any news?", "stream": True}) as answer:
        for line in answer.iter_lines():
            if '"delta"' in line and not ttft[index]:
                ttft[index] = (time.perf_counter() - start) * 1000
    total[index] = (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--action-samples", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-concurrent", action="store_true")
    args = parser.parse_args()
    print(json.dumps({"load_average": os.getloadavg(), "cpus": os.cpu_count()}), flush=True)
    settings = temp_settings(n_threads=args.threads, max_tokens=args.max_tokens, temperature=0.0, seed=1,
                             long_term_memory=False, state_tracking="off", expressions="off", group_order="list")
    engine = Engine(settings)
    ids = add_villagers(engine)
    state_overhead(engine)
    one_npc(engine, args.lines)
    eight_npcs(engine, ids)
    action_validity(engine, args.action_samples)
    engine.close()
    if not args.skip_concurrent:
        concurrent_scenes(settings, len(ids), args.max_tokens)
    print(json.dumps({"load_average_after": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
