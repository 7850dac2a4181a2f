// The scene view: several characters at once (avatars, presence, speaker labels), player lines and events,
// every reply streamed with its speaker, expression and actions. Talks only to /v1/scenes.
import { get, mediaUrl, post, stream } from "./api.js";
import { button, el } from "./chat.js";

const $ = (selector) => document.querySelector(selector);

class SceneView {
  constructor() {
    this.scene = null;
    this.busy = false;
    this.root = el("section", { id: "scene", hidden: true });
    this.cast = el("ul", { id: "scene-cast" });
    this.list = el("ol", { id: "scene-messages" });
    this.input = el("textarea", { id: "scene-input", rows: 2, placeholder: "Say something to the scene…" });
    this.event = el("input", { id: "scene-event", placeholder: "Or an event: 'Night falls.'" });
    const form = el("form", { id: "scene-composer", onsubmit: (e) => { e.preventDefault(); this.attempt(() => this.say()); } },
      this.input, el("div", { className: "row" }, this.event,
        button("Event", () => this.attempt(() => this.happen()), "Post the event"),
        el("button", { id: "scene-send", type: "submit", textContent: "Send" })));
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
    });
    this.root.append(el("div", { id: "scene-head" }, el("h2", { textContent: "Scene" }), this.cast), this.list, form);
  }

  attempt(work) {
    const status = $("#status");
    status.hidden = true;
    return work().catch((error) => { status.textContent = error.message; status.hidden = false; });
  }

  // The builder in the library column: pick characters, start a scene.
  mountBuilder(library) {
    this.picks = el("ul", { id: "scene-picks" });
    const box = el("section", { id: "scene-builder" }, el("h2", { textContent: "Scene" }),
      button("New scene…", () => this.attempt(() => this.choose()), "Put several characters in one scene"),
      this.picks);
    library.append(box);
  }

  async choose() {
    const { data } = await get("/v1/characters");
    this.picks.replaceChildren(...data.map((c) => el("li", {}, el("label", {},
      el("input", { type: "checkbox", value: c.id, className: "scene-pick" }), ` ${c.name}`))),
    el("li", {}, button("Start scene", () => this.attempt(() => this.start()), "Open the scene")));
  }

  async start() {
    const characters = [...document.querySelectorAll(".scene-pick:checked")].map((b) => b.value);
    if (!characters.length) throw new Error("Pick at least one character for the scene");
    const scene = await post("/v1/scenes", { characters });
    this.picks.replaceChildren();
    await this.open(scene.id);
  }

  async open(id) {
    const { scene, messages } = await get(`/v1/scenes/${encodeURIComponent(id)}`);
    this.scene = scene;
    $("#chat").hidden = true;
    $("#panel").hidden = true;
    this.root.hidden = false;
    await this.renderCast();
    this.list.replaceChildren(...messages.map((m) => this.bubble(m.role, m.name, m.content, m.meta)));
    this.input.focus();
  }

  async renderCast() {
    this.cast.replaceChildren(...this.scene.members.map((m) => {
      const img = el("img", { alt: m.name, className: "scene-avatar" });
      mediaUrl(`/v1/characters/${encodeURIComponent(m.id)}/avatar`).then((url) => { if (url) img.src = url; })
        .catch(() => {});
      const item = el("li", { className: `member ${m.present ? "present" : "away"}` }, img,
        el("span", { className: "name", textContent: m.name }),
        button(m.present ? "Leave" : "Join", () => this.attempt(() => this.presence(m)), `${m.name} leaves or joins`));
      item.dataset.id = m.id;
      return item;
    }));
  }

  async presence(member) {
    this.scene = await post(`/v1/scenes/${encodeURIComponent(this.scene.id)}/${member.present ? "leave" : "join"}`,
      { character: member.id });
    await this.renderCast();
  }

  bubble(role, name, text, meta = {}) {
    const who = el("div", { className: "who" }, el("span", { className: "speaker", textContent: name || role }));
    const item = el("li", { className: `msg ${role}` }, who, el("div", { className: "text", textContent: text }));
    this.decorate(item, meta);
    return item;
  }

  decorate(item, meta) {
    const who = item.querySelector(".who");
    if (meta.expression) who.append(el("span", { className: "expression", textContent: meta.expression }));
    for (const action of meta.actions || []) {
      item.append(el("div", { className: "action", textContent: `→ ${action.name} ${JSON.stringify(action.arguments)}` }));
    }
  }

  async say() {
    const text = this.input.value.trim();
    if (!text || this.busy) return;
    this.input.value = "";
    this.list.append(this.bubble("user", this.scene.user_name, text));
    await this.run("lines", { content: text });
  }

  async happen() {
    const text = this.event.value.trim();
    if (!text || this.busy) return;
    this.event.value = "";
    await this.run("events", { content: text, salience: 0.7 });
  }

  // Stream one request: a bubble per speaker, filled as its words arrive, finished with expression and actions.
  async run(path, body) {
    this.busy = true;
    let current = null;
    try {
      await stream(`/v1/scenes/${encodeURIComponent(this.scene.id)}/${path}`, { ...body, stream: true }, (p) => {
        if (p.event) this.list.append(this.bubble("event", "", p.event.content));
        if (p.delta !== undefined) {
          if (!current || current.dataset.speaker !== p.speaker) {
            current = this.bubble("assistant streaming", p.name, "");
            current.dataset.speaker = p.speaker;
            this.list.append(current);
          }
          current.querySelector(".text").textContent += p.delta;
        }
        if (p.reply && current) {
          current.classList.remove("streaming");
          current.querySelector(".text").textContent = p.reply.text;
          this.decorate(current, p.reply);
          current.dataset.id = p.reply.message_id;
          current = null;
        }
        this.list.scrollTop = this.list.scrollHeight;
      });
    } finally {
      this.busy = false;
    }
  }
}

const view = new SceneView();
$("main").append(view.root);
view.mountBuilder($("#library"));
// Opening a one-to-one chat (app.js shows #chat) closes the scene.
new MutationObserver(() => { if (!$("#chat").hidden) view.root.hidden = true; })
  .observe($("#chat"), { attributes: true, attributeFilter: ["hidden"] });
