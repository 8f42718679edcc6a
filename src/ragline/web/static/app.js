// The ragline page: ask, read the streamed answer, open its citations. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "ragline.apiKey";
// The conversation so far, oldest first: sent with each question so a follow-up finds what "it" means.
const conversation = [];
const MAX_TURNS = 12;

function headers() {
  const h = { "content-type": "application/json", accept: "text/event-stream" };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  $("status").textContent = "";
}

function renderAnswer(text, count) {
  // Turn [n] markers that refer to real citations into links to them; everything else stays text.
  const answer = $("answer");
  answer.textContent = "";
  const parts = text.split(/(\[\d+(?:\s*,\s*\d+)*\])/);
  for (const part of parts) {
    const m = part.match(/^\[(\d+(?:\s*,\s*\d+)*)\]$/);
    if (!m) { answer.append(part); continue; }
    const nums = m[1].split(",").map((s) => parseInt(s, 10));
    if (!nums.every((n) => n >= 1 && n <= count)) { answer.append(part); continue; }
    answer.append("[");
    nums.forEach((n, i) => {
      if (i) answer.append(", ");
      const a = document.createElement("a");
      a.href = `#cite-${n}`;
      a.className = "cite";
      a.textContent = String(n);
      a.addEventListener("click", () => { const d = $(`cite-${n}`); if (d) d.open = true; });
      answer.append(a);
    });
    answer.append("]");
  }
}

function renderCitations(citations) {
  const list = $("citations");
  list.textContent = "";
  for (const c of citations) {
    const li = document.createElement("li");
    const details = document.createElement("details");
    details.id = `cite-${c.n}`;
    const summary = document.createElement("summary");
    summary.textContent = c.section && c.section !== c.title ? `${c.title} — ${c.section}` : c.title || c.source;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = ` score ${Number(c.score).toFixed(3)}`;
    summary.append(score);
    const link = sourceElement(c.source);
    const text = document.createElement("pre");
    text.textContent = c.text;
    details.append(summary, link, text);
    li.append(details);
    list.append(li);
  }
}

// A citation links only to http(s) pages or to paths relative to this server; anything else (javascript:,
// data:, a local file path such as /srv/docs/a.md) is shown as text, never followed.
function safeHref(source) {
  const s = String(source || "");
  if (s.startsWith("/") || s.startsWith("\\")) return null; // an absolute path on the server's disk
  let url;
  try {
    url = new URL(s, window.location.href);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  const relative = !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(s);
  return relative || /^https?:\/\//i.test(s) ? url.href : null;
}

function sourceElement(source) {
  const href = safeHref(source);
  const el = document.createElement(href ? "a" : "span");
  el.textContent = source;
  el.className = "source";
  if (href) {
    el.href = href;
    el.target = "_blank";
    el.rel = "noopener noreferrer";
  }
  return el;
}

function showNotice(answer) {
  // Say plainly when the answer is not the model's, or did not pass the grounding check.
  let line = "";
  if (answer.fallback) line = `Extractive answer (quoted from the sources): ${answer.fallback}.`;
  else if (answer.grounded === false) {
    const why = answer.check && answer.check.reason ? `: ${answer.check.reason}` : "";
    line = `This answer did not pass the grounding check${why}. Check it against the sources.`;
  }
  $("notice").textContent = line;
  $("notice").hidden = !line;
}

function remember(question, answer) {
  conversation.push({ role: "user", content: question }, { role: "assistant", content: answer });
  const item = document.createElement("li");
  const q = document.createElement("p");
  q.className = "turn-question";
  q.textContent = question;
  const a = document.createElement("p");
  a.className = "turn-answer";
  a.textContent = answer;
  item.append(q, a);
  $("turns").append(item);
  $("conversation").hidden = false;
  $("question").value = "";
}

function newConversation() {
  conversation.length = 0;
  $("turns").textContent = "";
  $("conversation").hidden = true;
  $("result").hidden = true;
  $("question").focus();
}

async function readEvents(response, onEvent) {
  // Server-Sent Events over a POST response: blocks separated by a blank line.
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  const body = { query: question, stream: true, history: conversation.slice(-MAX_TURNS) };
  const k = parseInt($("k").value, 10);
  if (k) body.k = k;
  const source = $("source").value.trim();
  if (source) body.filters = { source };

  $("result").hidden = false;
  $("error").hidden = true;
  $("answer").textContent = "";
  $("citations").textContent = "";
  $("timings").textContent = "";
  $("notice").hidden = true;
  $("notice").textContent = "";
  $("status").textContent = "Retrieving and generating…";
  $("submit").disabled = true;
  let text = "";
  let count = 0;
  try {
    const response = await fetch("query", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try { message = (await response.json()).error.message || message; } catch (_) { /* not JSON */ }
      if (response.status === 401) message += " — enter an API key under Options.";
      showError(message);
      return;
    }
    await readEvents(response, (name, data) => {
      if (name === "token") {
        text += data.text;
        $("answer").textContent = text;
      } else if (name === "citations") {
        count = data.length;
        renderCitations(data);
      } else if (name === "done") {
        count = data.citations.length;
        renderCitations(data.citations);
        renderAnswer(data.answer || text || "(no answer)", count);
        const t = data.timings || {};
        $("timings").textContent =
          `retrieve ${Math.round((t.retrieve || 0) * 1000)} ms · answer ${(t.generate || 0).toFixed(1)} s · ` +
          `${data.mode} · ${data.llm}`;
        showNotice(data);
        $("status").textContent = "";
        remember(question, data.answer || text);
      } else if (name === "error") {
        showError(data.error ? data.error.message : "the answer failed");
      }
    });
    if (text && !$("timings").textContent) renderAnswer(text, count);
  } catch (err) {
    showError(`cannot reach the service: ${err.message}`);
  } finally {
    $("submit").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("apikey").value = sessionStorage.getItem(KEY_STORE) || "";
  $("apikey").addEventListener("change", (e) => {
    const v = e.target.value.trim();
    if (v) sessionStorage.setItem(KEY_STORE, v); else sessionStorage.removeItem(KEY_STORE);
  });
  $("ask").addEventListener("submit", ask);
  $("new").addEventListener("click", newConversation);
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask").requestSubmit(); }
  });
  $("question").focus();
});
