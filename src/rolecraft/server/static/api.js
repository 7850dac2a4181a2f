// The rolecraft public API as the web app uses it: JSON calls, authorised media, and SSE streams.
const KEY_STORE = "rolecraft.apiKey";

export class ApiError extends Error {}

export function apiKey() {
  return localStorage.getItem(KEY_STORE) || "";
}

export function setApiKey(value) {
  if (value) localStorage.setItem(KEY_STORE, value);
  else localStorage.removeItem(KEY_STORE);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}`, ...extra } : extra;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    message = body.error?.message || body.detail || message;
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(message);
}

export async function call(method, path, body) {
  const init = { method, headers: headers() };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);
export const put = (path, body) => call("PUT", path, body);

const blobs = new Map();

// An object URL for an authorised image or audio route (img/audio tags cannot send the key); null on 404.
export async function mediaUrl(path, { cache = true } = {}) {
  if (cache && blobs.has(path)) return blobs.get(path);
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) {
    if (response.status === 404 || response.status === 501) return null;
    throw await failure(response);
  }
  const url = URL.createObjectURL(await response.blob());
  if (cache) blobs.set(path, url);
  return url;
}

// POST and read server-sent events; `onEvent` gets each parsed JSON payload until [DONE].
export async function stream(path, body, onEvent, extraHeaders = {}) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream", ...extraHeaders }),
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
      if (data === "[DONE]") return;
      if (!data) continue;
      const payload = JSON.parse(data);
      if (payload.error) throw new ApiError(payload.error.message);
      onEvent(payload);
    }
  }
}
