"""Thornbury: a village scene with three NPCs, played through rolecraft's scene API.

    rolecraft serve &                                   # or let this script start it (no --url)
    python examples/village/play.py --scripted --url http://127.0.0.1:8765
    python examples/village/play.py                     # play: type lines; /event TEXT, /join NAME,
                                                        # /leave NAME, /state, /quit

The cast: Ember (innkeeper, bundled), 林月 (herbalist, speaks Chinese, bundled) and Mara
(gate guard, `mara.json` next to this file, whose card declares her own `open_gate` action).
The game declares the actions everyone may take, keeps the scene's state (place, time,
weather, objects, the player's stats and inventory), shows the NPCs two pictures, sends
events, and answers each action an NPC takes: it refuses to open a frozen gate, and the
guard's next prompt says so. Everything goes over plain HTTP + server-sent events, so any
game engine can do the same.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
CAST = ["ember", "linyue", "mara"]
ITEMS = ["bread", "herbs", "lantern", "coin"]
ACTIONS = [
    {"type": "function", "function": {"name": "give_item", "description": "Hand the player an item.",
                                      "parameters": {"type": "object", "required": ["item"], "properties": {
                                          "item": {"type": "string", "enum": ITEMS}}}}},
    {"type": "function", "function": {"name": "emote", "description": "Show a feeling with the body.",
                                      "parameters": {"type": "object", "required": ["name"], "properties": {
                                          "name": {"type": "string", "enum": ["nod", "frown", "laugh", "bow"]}}}}},
]
OPENING = {"location": "Thornbury village square", "time_of_day": "evening", "weather": "light snow",
           "nearby_objects": ["well", "hay cart", "lantern post", "north gate"],
           "player": {"health": 7, "gold": 3}, "inventory": ["walking stick", "empty flask"],
           "flags": {"wolves_sighted": False}}
FROZEN = "the north gate is frozen shut"


def picture(name: str) -> str:
    """A photo bundled with scikit-image, as the data: URL a game would send (its screenshot)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(np.asarray(getattr(data, name)())).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


@dataclass
class Game:
    """The game's side of the conversation: one scene, a timeline printer, the replies it got."""

    http: httpx.Client
    say: Callable[[str], None] = print
    live: bool = True  # print each reply as it streams (else one timeline line per reply)
    scene: str = ""
    replies: list[dict[str, Any]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)

    def setup(self) -> str:
        """Import Mara's card once, open the scene with her away, and return its id."""
        if self.http.get("/v1/characters/mara").status_code == 404:
            card = (HERE / "mara.json").read_bytes()
            done = self.http.post("/v1/characters", files={"file": ("mara.json", card, "application/json")},
                                  data={"id": "mara"})
            done.raise_for_status()
        body = {"characters": CAST, "user_name": "Kai", "persona": "A traveller with a limp, new to Thornbury.",
                "actions": ACTIONS, "state": OPENING, "absent": ["mara"],
                "policies": {"ember": {"threshold": 0.8}}}
        answer = self.http.post("/v1/scenes", json=body)
        answer.raise_for_status()
        self.scene = answer.json()["id"]
        self.say(f"— scene {self.scene}: {', '.join(m['name'] for m in answer.json()['members'])} "
                 "(Mara is at the gate)")
        return self.scene

    def stream(self, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """POST to the scene, print the timeline as it streams, answer each action; the replies."""
        replies, speaking = [], None
        with self.http.stream("POST", f"/v1/scenes/{self.scene}/{path}", json={**body, "stream": True}) as answer:
            answer.raise_for_status()
            for payload in _events(answer.iter_lines()):
                if "error" in payload:
                    raise RuntimeError(payload["error"]["message"])
                if "event" in payload:
                    self.say(f"  * {payload['event']['content']}")
                elif "delta" in payload and self.live:
                    if speaking != payload["speaker"]:
                        speaking = payload["speaker"]
                        print(f"  {payload['name']}: ", end="", flush=True)
                    print(payload["delta"], end="", flush=True)
                elif "reply" in payload:
                    speaking = None
                    reply = payload["reply"]
                    acts = ", ".join(f"{a['name']}{json.dumps(a['arguments'])}" for a in reply["actions"]) or "-"
                    said = "" if self.live else f"  {reply['name']}: {reply['text']}\n"
                    if self.live:
                        print()
                    self.say(f"{said}    ({reply['expression'] or 'neutral'}; actions: {acts})")
                    replies.append(reply)
        self.replies.extend(replies)
        for reply in replies:
            self.judge(reply)
        return replies

    def judge(self, reply: dict[str, Any]) -> None:
        """The game carries out each action, or refuses it with a result event the NPC will read."""
        for index, action in enumerate(reply["actions"]):
            refused = action["name"] == "open_gate" and action["arguments"].get("gate") == "north"
            result = {"message_id": reply["message_id"], "index": index, "ok": not refused,
                      "reason": FROZEN if refused else ""}
            if refused:
                self.refused.append(reply["message_id"])
            told = refused and len(self.refused) == 1  # the NPC reacts to its first refusal (no endless retries)
            self.stream("events", {"result": result, "addressed": [reply["character_id"]] if told else []})

    def line(self, text: str, **extra: Any) -> list[dict[str, Any]]:
        self.say(f"Kai: {text}")
        return self.stream("lines", {"content": text, **extra})

    def event(self, text: str, **extra: Any) -> list[dict[str, Any]]:
        return self.stream("events", {"content": text, **extra})

    def presence(self, name: str, present: bool) -> None:
        self.http.post(f"/v1/scenes/{self.scene}/{'join' if present else 'leave'}",
                       json={"character": name}).raise_for_status()


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[6:])


def scripted(game: Game, max_tokens: int | None = None) -> Game:
    """The whole scene, as a game would drive it."""
    sampling = {"max_tokens": max_tokens} if max_tokens else {}
    game.setup()
    game.line("Ember, I found this cup on the road. Is it yours?", images=[picture("coffee")], **sampling)
    game.line("Ember, keep this quiet: I lost the mayor's ring.", **sampling)
    game.presence("mara", True)
    game.event("Mara walks in from the north gate, stamping snow off her boots.", **sampling)
    game.line("林月，你好！你有治伤的草药吗？", state={"time_of_day": "night"}, **sampling)
    game.event("A wolf howls right outside the north gate!", salience=0.7, images=[picture("chelsea")],
               state={"flags": {"wolves_sighted": True}}, **sampling)
    game.line("Mara, please open the north gate for me.", **sampling)
    game.say(f"— state now: {game.http.get(f'/v1/scenes/{game.scene}/state').json()['prompt_note']}")
    return game


def interactive(game: Game) -> None:
    game.setup()
    while (text := input("Kai> ").strip()) != "/quit":
        command, _, rest = text.partition(" ")
        if command == "/event":
            game.event(rest, salience=0.7)
        elif command in {"/join", "/leave"}:
            game.presence(rest, command == "/join")
        elif command == "/state":
            print(game.http.get(f"/v1/scenes/{game.scene}/state").json()["prompt_note"])
        elif text:
            game.line(text)


def _serve() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "rolecraft", "serve", "--port", str(port)], env=os.environ)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("rolecraft serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scripted", action="store_true", help="play the whole scene by script")
    parser.add_argument("--url", help="a running `rolecraft serve` (default: start one)")
    parser.add_argument("--key", default=os.environ.get("ROLECRAFT_API_KEY", "local"), help="API key")
    parser.add_argument("--max-tokens", type=int, default=60, help="reply length")
    args = parser.parse_args()
    process, url = (None, args.url) if args.url else _serve()
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {args.key}"}, timeout=600) as http:
            game = Game(http)
            scripted(game, args.max_tokens) if args.scripted else interactive(game)
    finally:
        if process is not None:
            process.terminate()


if __name__ == "__main__":
    main()
