// Call mode: talk to the character over the /v1/realtime WebSocket. The microphone streams PCM16 with a level
// meter; your words appear as you speak; the reply is heard sentence by sentence with its expression; speaking
// over it (or Interrupt) stops it at once. The server does the listening (VAD, STT), the turn and the voice.
import { apiKey } from "./api.js";
import { el } from "./chat.js";

const OUT_RATE = 24000;
const FRAME = 2048;

function base64Of(int16) {
  const bytes = new Uint8Array(int16.buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function samplesOf(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const pcm = new Int16Array(bytes.buffer);
  return Float32Array.from(pcm, (v) => v / 32768);
}

class VoiceCall {
  constructor(chat, ui, report) {
    Object.assign(this, { chat, ui, report });
    this.stats = { sent: 0, audioFrames: 0, expressions: [], transcripts: [], replies: [], cancelled: 0 };
    this.playing = [];
    this.nextTime = 0;
  }

  async start(sessionId) {
    this.media = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
    this.context = new AudioContext();
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/realtime?session=`
      + encodeURIComponent(sessionId);
    const key = apiKey();
    this.socket = new WebSocket(url, ["realtime", ...(key ? [`openai-insecure-api-key.${key}`] : [])]);
    this.socket.onmessage = (message) => this.onEvent(JSON.parse(message.data));
    this.socket.onclose = (closed) => {
      if (closed.code !== 1000 && closed.code !== 1005) this.report(`Call ended: ${closed.reason || closed.code}`);
      this.ui.end();
    };
    await new Promise((resolve, reject) => {
      this.socket.onopen = resolve;
      this.socket.onerror = () => reject(new Error("cannot open the call (WebSocket refused)"));
    });
    this.send({ type: "session.update", session: { input_sample_rate: this.context.sampleRate,
      output_sample_rate: OUT_RATE, input_audio_format: "pcm16" } });
    this.listen();
  }

  listen() {
    const source = this.context.createMediaStreamSource(this.media);
    this.processor = this.context.createScriptProcessor(FRAME, 1, 1);
    this.processor.onaudioprocess = (event) => {
      const input = event.inputBuffer.getChannelData(0);
      let energy = 0;
      const pcm = new Int16Array(input.length);
      for (let i = 0; i < input.length; i++) {
        energy += input[i] * input[i];
        pcm[i] = Math.max(-32768, Math.min(32767, Math.round(input[i] * 32767)));
      }
      this.ui.level(Math.sqrt(energy / input.length));
      if (this.socket.readyState === WebSocket.OPEN) {
        this.send({ type: "input_audio_buffer.append", audio: base64Of(pcm) });
        this.stats.sent++;
      }
    };
    source.connect(this.processor);
    this.processor.connect(this.context.destination); // silent: the output buffer is left zero
  }

  send(event) {
    this.socket.send(JSON.stringify(event));
  }

  onEvent(event) {
    const handlers = {
      "input_audio_buffer.speech_started": () => { this.silence(); this.ui.you("…"); },
      "conversation.item.input_audio_transcription.delta": () => this.ui.you(`${event.delta}…`),
      "conversation.item.input_audio_transcription.completed": () => {
        this.ui.you(event.transcript);
        this.stats.transcripts.push(event.transcript);
      },
      "response.created": () => { this.reply = ""; this.ui.them(""); },
      "response.audio_transcript.delta": () => { this.reply += event.delta; this.ui.them(this.reply); },
      "rolecraft.expression": () => {
        this.ui.expression(event.expression);
        this.stats.expressions.push(event.expression);
        if (event.expression) this.chat.showSprite(event.expression);
      },
      "response.audio.delta": () => { this.play(samplesOf(event.delta)); this.stats.audioFrames++; },
      "response.done": () => this.done(event.response),
      error: () => this.report(event.error.message),
    };
    handlers[event.type]?.();
  }

  done(response) {
    if (response.status === "cancelled") {
      this.silence();
      this.stats.cancelled++;
      this.ui.them(`${response.rolecraft?.heard || ""} —`);
    } else if (response.status === "completed") {
      this.stats.replies.push(this.reply);
    }
    this.chat.reload().catch((error) => this.report(error.message));
  }

  play(samples) {
    const buffer = this.context.createBuffer(1, samples.length, OUT_RATE);
    buffer.copyToChannel(samples, 0);
    const node = this.context.createBufferSource();
    node.buffer = buffer;
    node.connect(this.context.destination);
    this.nextTime = Math.max(this.nextTime, this.context.currentTime + 0.05);
    node.start(this.nextTime);
    this.nextTime += buffer.duration;
    this.playing.push(node);
    node.onended = () => { this.playing = this.playing.filter((n) => n !== node); };
  }

  silence() {
    this.playing.forEach((node) => { try { node.stop(); } catch { /* already ended */ } });
    this.playing = [];
    this.nextTime = 0;
  }

  interrupt() {
    this.silence();
    if (this.socket.readyState === WebSocket.OPEN) this.send({ type: "response.cancel" });
  }

  stop() {
    this.silence();
    this.processor?.disconnect();
    this.media?.getTracks().forEach((track) => track.stop());
    this.socket?.close(1000, "hung up");
    this.context?.close();
  }
}

function callPanel() {
  const meter = el("meter", { id: "call-level", min: 0, max: 1, value: 0 });
  const you = el("p", { id: "call-you", className: "call-line" });
  const them = el("p", { id: "call-them", className: "call-line" });
  const face = el("span", { id: "call-expression" });
  const interrupt = el("button", { id: "call-interrupt", type: "button", textContent: "Interrupt" });
  const panel = el("div", { id: "call-panel", hidden: true },
    el("div", { className: "row" }, el("span", { textContent: "Mic " }), meter, face, interrupt),
    el("div", {}, el("strong", { textContent: "You: " }), you),
    el("div", {}, el("strong", { textContent: "Them: " }), them));
  return { panel, meter, you, them, face, interrupt };
}

// Wire the call button of the composer to `chat`'s open session.
export function wireCall(chat, report) {
  const button = document.querySelector("#call");
  const parts = callPanel();
  document.querySelector("#composer").before(parts.panel);
  let active = null;
  const ui = {
    level: (rms) => { parts.meter.value = Math.min(1, rms * 4); },
    you: (text) => { parts.you.textContent = text; },
    them: (text) => { parts.them.textContent = text; },
    expression: (label) => { parts.face.textContent = label ? `(${label})` : ""; },
    end: () => {
      if (active) window.callStats = active.stats;
      active?.stop();
      active = null;
      button.textContent = "Call";
      parts.panel.hidden = true;
    },
  };
  parts.interrupt.addEventListener("click", () => active?.interrupt());
  button.addEventListener("click", async () => {
    if (active) return ui.end();
    if (!chat.sessionId) return report("Open a chat first");
    active = new VoiceCall(chat, ui, report);
    window.callStats = active.stats;
    button.textContent = "Hang up";
    parts.panel.hidden = false;
    try {
      await active.start(chat.sessionId);
    } catch (error) {
      report(error.message);
      ui.end();
    }
  });
}
