// One open chat: render the session's current path, send turns (streamed), swipes, regenerate, edit, branch, voice.
import { get, mediaUrl, post, stream } from "./api.js";

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function button(label, onClick, title = "") {
  return el("button", { type: "button", textContent: label, title, onclick: onClick });
}

export { el, button };

export class Chat {
  constructor(root, report) {
    this.list = root.querySelector("#messages");
    this.sprite = root.querySelector("#sprite");
    this.report = report;
    this.character = null;
    this.sessionId = null;
    this.messages = [];
    this.swipes = null;
    this.busy = false;
  }

  async open(character, sessionId) {
    this.character = character;
    this.sessionId = sessionId;
    await this.reload();
  }

  async reload() {
    const history = await get(`/v1/sessions/${encodeURIComponent(this.sessionId)}`);
    this.messages = history.messages;
    const last = this.messages[this.messages.length - 1];
    this.swipes = last && last.role === "assistant" && this.messages.length > 1
      ? await get(`/v1/sessions/${encodeURIComponent(this.sessionId)}/swipes`) : null;
    this.render();
  }

  render() {
    this.list.replaceChildren(...this.messages.map((m, i) => this.item(m, i === this.messages.length - 1)));
    this.list.scrollTop = this.list.scrollHeight;
    const lastReply = [...this.messages].reverse().find((m) => m.role === "assistant");
    this.showSprite(lastReply?.meta?.expression);
  }

  item(message, isLast) {
    const who = el("div", { className: "who", textContent: message.name || message.role });
    const label = message.meta?.expression;
    if (label) who.append(el("span", { className: "expression", textContent: label }));
    const item = el("li", { className: `msg ${message.role}` },
      who, this.attachments(message), el("div", { className: "text", textContent: message.content }),
      this.observations(message), this.tools(message, isLast));
    item.dataset.id = message.id;
    return item;
  }

  // Pictures and recordings the message carries (stored attachments), loaded with the API key.
  attachments(message) {
    const refs = message.meta?.attachments || [];
    if (!refs.length) return null;
    const box = el("div", { className: "attachments" });
    for (const ref of refs) {
      const node = ref.kind === "image"
        ? el("img", { className: "thumb", alt: "picture you showed", title: "Click to enlarge" })
        : el("audio", { controls: true, className: "recording" });
      if (ref.kind === "image") node.addEventListener("click", () => this.enlarge(node.src));
      mediaUrl(`/v1/attachments/${ref.sha256}`).then((url) => { if (url) node.src = url; })
        .catch((error) => this.report(error.message));
      box.append(node);
    }
    return box;
  }

  // What the character perceived (picture descriptions, how it was said), shown on demand.
  observations(message) {
    const notes = [...(message.meta?.image_notes || []), message.meta?.audio?.note].filter(Boolean);
    if (!notes.length) return null;
    return el("details", { className: "observation" }, el("summary", { textContent: "What the character perceived" }),
      el("p", { textContent: notes.join("\n") }));
  }

  enlarge(src) {
    const dialog = el("dialog", { className: "lightbox" }, el("img", { src, alt: "picture, full size" }));
    dialog.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
  }

  tools(message, isLast) {
    const box = el("div", { className: "tools" });
    if (message.role === "assistant") {
      box.append(button("Voice", () => this.speak(message), "Play this reply in the character's voice"));
    }
    if (isLast && message.role === "assistant" && this.swipes && this.swipes.swipes.length) {
      const count = this.swipes.swipes.length, at = this.swipes.selected ?? count - 1;
      box.append(button("◀", () => this.swipe(at - 1), "Previous alternative"),
        el("span", { className: "swipe-count", textContent: `${at + 1}/${count}` }),
        button("▶", () => this.swipe(at + 1), "Next alternative"),
        button("Regenerate", () => this.regenerate()));
    }
    if (isLast || this.isLastUser(message)) box.append(button("Edit", (e) => this.edit(message, e.target)));
    if (!isLast) box.append(button("Branch", () => this.branch(message), "Continue from this message"));
    return box;
  }

  isLastUser(message) {
    const users = this.messages.filter((m) => m.role === "user");
    return message.role === "user" && users[users.length - 1] === message;
  }

  async showSprite(label) {
    this.sprite.hidden = true;
    if (!label || !this.character) return;
    const url = await mediaUrl(`/v1/characters/${encodeURIComponent(this.character.id)}/expressions/${label}`)
      .catch(() => null);
    if (url) Object.assign(this.sprite, { src: url, alt: label, title: label, hidden: false });
  }

  // Append a streaming bubble and feed it text pieces; returns the text node's setter.
  pending(role, name, text = "", parts = []) {
    const body = el("div", { className: "text", textContent: text });
    const who = el("div", { className: "who", textContent: name });
    const shown = parts.filter((p) => p.type === "image_url")
      .map((p) => el("img", { className: "thumb", src: p.image_url.url, alt: "picture you showed" }));
    const box = shown.length ? el("div", { className: "attachments" }, ...shown) : null;
    this.list.append(el("li", { className: `msg ${role} streaming` }, who, box, body));
    this.list.scrollTop = this.list.scrollHeight;
    return (piece) => { body.textContent += piece; this.list.scrollTop = this.list.scrollHeight; };
  }

  async guarded(work) {
    if (this.busy) return;
    this.busy = true;
    document.body.classList.add("busy");
    try {
      await work();
    } catch (error) {
      this.report(error.message);
    } finally {
      this.busy = false;
      document.body.classList.remove("busy");
      await this.reload().catch((error) => this.report(error.message));
    }
  }

  // Text only: the session turn route; with images or audio: chat completions in session mode.
  send(text, parts) {
    return this.guarded(async () => {
      this.pending("user", "You", text, parts);
      const add = this.pending("assistant", this.character.name);
      const sid = encodeURIComponent(this.sessionId);
      if (!parts.length) {
        await stream(`/v1/sessions/${sid}/turns`, { content: text, stream: true }, (e) => e.delta && add(e.delta));
        return;
      }
      const content = [...(text ? [{ type: "text", text }] : []), ...parts];
      await stream("/v1/chat/completions",
        { model: this.character.id, stream: true, messages: [{ role: "user", content }] },
        (e) => e.choices?.[0]?.delta?.content && add(e.choices[0].delta.content),
        { "X-Rolecraft-Session": this.sessionId });
    });
  }

  regenerate() {
    return this.guarded(async () => {
      this.list.lastElementChild?.remove();
      const add = this.pending("assistant", this.character.name);
      await stream(`/v1/sessions/${encodeURIComponent(this.sessionId)}/regenerate`, { stream: true },
        (e) => e.delta && add(e.delta));
    });
  }

  swipe(index) {
    const count = this.swipes?.swipes.length || 0;
    if (index < 0 || index >= count) return Promise.resolve();
    return this.guarded(() => post(`/v1/sessions/${encodeURIComponent(this.sessionId)}/swipes`, { index }));
  }

  branch(message) {
    return this.guarded(() => post(`/v1/sessions/${encodeURIComponent(this.sessionId)}/branch`,
      { message_id: message.id }));
  }

  edit(message, trigger) {
    const item = trigger.closest("li");
    const text = item.querySelector(".text");
    const area = el("textarea", { className: "editor", value: message.content, rows: 3 });
    const save = () => this.guarded(async () => {
      const path = `/v1/sessions/${encodeURIComponent(this.sessionId)}/edit`;
      if (message.role === "assistant") {
        await post(path, { role: "assistant", content: area.value });
        return;
      }
      text.textContent = area.value;
      const add = this.pending("assistant", this.character.name);
      await stream(path, { role: "user", content: area.value, stream: true }, (e) => e.delta && add(e.delta));
    });
    text.replaceWith(el("div", { className: "edit" }, area,
      button("Save", save), button("Cancel", () => this.render())));
    area.focus();
  }

  async speak(message) {
    try {
      const path = `/v1/sessions/${encodeURIComponent(this.sessionId)}/messages/${message.id}/audio`;
      const url = await mediaUrl(path);
      if (!url) throw new Error("speech is not available on this server");
      await new Audio(url).play();
    } catch (error) {
      this.report(error.message);
    }
  }
}
