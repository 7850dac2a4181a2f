// The rolecraft web app: gallery and card import, sessions, personas, key, side panels; the chat lives in chat.js.
import { apiKey, get, mediaUrl, post, put, setApiKey } from "./api.js";
import { button, Chat, el } from "./chat.js";
import { wireCall } from "./call.js";
import { readDataUrl, Recorder, toWavBase64 } from "./media.js";

const $ = (selector) => document.querySelector(selector);
const PERSONA_STORE = "rolecraft.persona";
const chat = new Chat($("#chat"), report);
const recorder = new Recorder();
let character = null;
let personas = [];
let attachments = [];
let panelView = "state";

function report(message) {
  const status = $("#status");
  status.textContent = message;
  status.hidden = !message;
}

async function attempt(work) {
  try {
    report("");
    await work();
  } catch (error) {
    report(error.message);
  }
}

async function loadGallery() {
  const { data } = await get("/v1/characters");
  $("#gallery").replaceChildren(...data.map((c) => {
    const img = el("img", { alt: "", className: "avatar" });
    mediaUrl(`/v1/characters/${encodeURIComponent(c.id)}/avatar`).then((url) => { if (url) img.src = url; })
      .catch(() => {});
    const card = el("button", { type: "button", className: "character", onclick: () => attempt(() => choose(c)) },
      img, el("span", { textContent: c.name }));
    card.dataset.id = c.id;
    return el("li", {}, card);
  }));
}

async function importCard(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const created = await post("/v1/characters", form);
  await loadGallery();
  report(`Imported ${created.name}`);
  await choose(created);
}

async function choose(chosen) {
  character = chosen;
  document.querySelectorAll(".character").forEach((b) => b.classList.toggle("selected", b.dataset.id === chosen.id));
  $("#sessions-of").textContent = chosen.name;
  $("#sessions-box").hidden = false;
  await loadSessions();
}

async function loadSessions() {
  const { data } = await get(`/v1/sessions?character=${encodeURIComponent(character.id)}`);
  $("#sessions").replaceChildren(...data.map((s) => el("li", {},
    button(`${new Date(s.updated_at).toLocaleString()} · ${s.message_count} messages`,
      () => attempt(() => openSession(s.id)), `Resume chat ${s.id}`))));
}

function selectedPersona() {
  return personas.find((p) => p.id === $("#persona").value) || null;
}

async function newSession() {
  const persona = selectedPersona();
  const body = { character: character.id };
  if (persona) Object.assign(body, { user_name: persona.name, persona: persona.description || null });
  const session = await post("/v1/sessions", body);
  await loadSessions();
  await openSession(session.id);
}

async function openSession(id) {
  $("#chat").hidden = false;
  $("#panel").hidden = false;
  $("#chat-title").textContent = character.name;
  $("#chat-avatar").src = (await mediaUrl(`/v1/characters/${encodeURIComponent(character.id)}/avatar`)) || "";
  await chat.open(character, id);
  await showPanel(panelView);
  $("#input").focus();
}

async function loadPersonas() {
  try {
    personas = await get("/v1/personas");
  } catch (error) {
    personas = [];
    report(`Personas: ${error.message}`);
  }
  const saved = localStorage.getItem(PERSONA_STORE) || personas.find((p) => p.is_default)?.id || "";
  $("#persona").replaceChildren(el("option", { value: "", textContent: "(default)" }),
    ...personas.map((p) => el("option", { value: p.id, textContent: p.name, selected: p.id === saved })));
}

async function savePersona(form) {
  const data = new FormData(form);
  const id = data.get("id");
  await put(`/v1/personas/${encodeURIComponent(id)}`, { name: data.get("name"), description: data.get("description") });
  localStorage.setItem(PERSONA_STORE, id);
  await loadPersonas();
}

function lorebookView(book) {
  if (!book || !book.entries.length) return el("p", { textContent: "This character has no lorebook." });
  return el("ul", { className: "lore" }, ...book.entries.map((e) => el("li", {},
    el("strong", { textContent: e.name || e.comment || e.keys.join(", ") || "(entry)" }),
    el("small", { textContent: ` keys: ${e.keys.join(", ")}${e.enabled ? "" : " (disabled)"}` }),
    el("p", { textContent: e.content }))));
}

async function showPanel(view) {
  panelView = view;
  document.querySelectorAll("#panel .tabs button")
    .forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  const body = $("#panel-body");
  try {
    if (view === "state") {
      const state = await get(`/v1/sessions/${encodeURIComponent(chat.sessionId)}/state`);
      body.replaceChildren(el("pre", { textContent: JSON.stringify(state, null, 2) }));
    } else {
      body.replaceChildren(lorebookView(await get(`/v1/characters/${encodeURIComponent(character.id)}/lorebook`)));
    }
  } catch (error) {
    body.replaceChildren(el("p", { className: "muted", textContent: error.message }));
  }
}

function renderAttachments() {
  $("#attachments").replaceChildren(...attachments.map((a, i) => el("li", {},
    a.preview ? el("img", { src: a.preview, alt: a.label }) : el("span", { textContent: a.label }),
    button("×", () => { attachments.splice(i, 1); renderAttachments(); }, "Remove"))));
}

async function attachImage(file) {
  const url = await readDataUrl(file);
  const part = { type: "image_url", image_url: { url } };
  attachments.push({ label: file.name || "pasted image", preview: url, part });
  renderAttachments();
}

async function toggleRecording() {
  const mic = $("#mic");
  if (!recorder.active) {
    await recorder.start();
    mic.textContent = "Stop";
    mic.classList.add("recording");
    return;
  }
  mic.textContent = "Record";
  mic.classList.remove("recording");
  const data = await toWavBase64(await recorder.stop());
  attachments.push({ label: "voice message", part: { type: "input_audio", input_audio: { data, format: "wav" } } });
  renderAttachments();
}

async function submit(event) {
  event.preventDefault();
  const text = $("#input").value.trim();
  if ((!text && !attachments.length) || chat.busy) return;
  const parts = attachments.map((a) => a.part);
  $("#input").value = "";
  attachments = [];
  renderAttachments();
  report("");
  await chat.send(text, parts);
  await loadSessions().catch(() => {});
  if (panelView === "state") await showPanel("state");
}

function wireDropzone() {
  const zone = $("#dropzone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    [...e.dataTransfer.files].forEach((f) => attempt(() => importCard(f)));
  });
  $("#card-file").addEventListener("change", (e) => {
    [...e.target.files].forEach((f) => attempt(() => importCard(f)));
    e.target.value = "";
  });
}

function wireComposer() {
  $("#composer").addEventListener("submit", (e) => attempt(() => submit(e)));
  $("#input").addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.shiftKey) return;
    e.preventDefault();
    $("#composer").requestSubmit();
  });
  $("#input").addEventListener("paste", (e) => {
    const images = [...e.clipboardData.files].filter((f) => f.type.startsWith("image/"));
    if (images.length) e.preventDefault();
    images.forEach((f) => attempt(() => attachImage(f)));
  });
  $("#image-file").addEventListener("change", (e) => {
    [...e.target.files].forEach((f) => attempt(() => attachImage(f)));
    e.target.value = "";
  });
  $("#mic").addEventListener("click", () => attempt(toggleRecording));
}

function wireHeader() {
  const key = $("#api-key");
  key.value = apiKey();
  key.addEventListener("change", () => { setApiKey(key.value.trim()); attempt(start); });
  $("#persona").addEventListener("change", (e) => localStorage.setItem(PERSONA_STORE, e.target.value));
  const dialog = $("#persona-dialog");
  $("#new-persona").addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save") attempt(() => savePersona(dialog.querySelector("form")));
  });
  $("#new-session").addEventListener("click", () => attempt(newSession));
  document.querySelectorAll("#panel .tabs button").forEach((b) =>
    b.addEventListener("click", () => showPanel(b.dataset.view)));
}

async function start() {
  await loadGallery();
  await loadPersonas();
}

wireDropzone();
wireComposer();
wireHeader();
wireCall(chat, report);
attempt(start);
