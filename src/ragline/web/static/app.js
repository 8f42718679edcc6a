// The ragline page: a conversation of cited answers, streamed, stoppable, rendered from Markdown (markdown.js).
// No dependencies; every piece of text from the server goes into the page as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "ragline.apiKey";
const MAX_TURNS = 12; // messages of history sent with a question (user and assistant alike)
const SOURCE_LIMIT = 1000;
// Where relative citation sources point (answer.citation_base_url, set by the server in the page); "" for nowhere.
const CITATION_BASE = (document.querySelector('meta[name="ragline-citation-base"]') || {}).content || "";

// The finished turns, oldest first, as the API takes them: sent with each question so a follow-up finds what
// "it" means. A stopped or failed turn is shown but not sent.
const conversation = [];
let turnCount = 0;
let current = null; // the answer under way: {controller, turn}

function headers(json) {
  const h = json ? { "content-type": "application/json", accept: "text/event-stream" } : {};
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

async function errorMessage(response) {
  let message = `${response.status} ${response.statusText}`;
  try { message = (await response.json()).error.message || message; } catch (_) { /* not JSON */ }
  if (response.status === 401) message += " — enter an API key under Options.";
  return message;
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

// -- one turn: the question, its answer and its sources ------------------------------------------------

function citationTitle(c) {
  return c.section && c.section !== c.title ? `${c.title} — ${c.section}` : c.title || c.source;
}

function addTurn(question, scope) {
  turnCount += 1;
  const li = element("li", "turn");
  li.dataset.state = "streaming";
  li.dataset.turn = String(turnCount);
  const q = element("div", "question");
  q.append(element("p", "question-text", question));
  if (scope) q.append(element("p", "scope muted small", `in ${scope}`));
  const reply = element("div", "reply");
  const status = element("p", "status muted", "Retrieving and generating…");
  status.setAttribute("role", "status");
  const answer = element("div", "answer md");
  const stopped = element("p", "stopped", "Stopped: the answer is incomplete.");
  stopped.hidden = true;
  const error = element("div", "error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  const notice = element("p", "notice");
  notice.setAttribute("role", "note");
  notice.hidden = true;
  // auto mode: the extract, shown at once and labelled, until the model's answer replaces it.
  const draftNote = element("p", "draft-note muted small", "Draft from the documentation, shown while the model writes its answer, which replaces it.");
  draftNote.setAttribute("role", "status");
  draftNote.hidden = true;
  const timings = element("p", "timings muted small");
  const sourcesTitle = element("h3", "sources-title", "Sources");
  sourcesTitle.hidden = true;
  const citations = element("ol", "citations");
  reply.append(status, draftNote, answer, stopped, error, notice, timings, sourcesTitle, citations);
  li.append(q, reply);
  $("turns").append(li);
  $("conversation").hidden = false;
  const turn = {
    li, status, draftNote, answer, stopped, error, notice, timings, sourcesTitle, citations, byNumber: new Map(),
  };
  turn.view = new RaglineMarkdown.View(answer, {});
  li.scrollIntoView({ block: "end" });
  return turn;
}

// A citation's link: a web page as it is; a relative source (docs/guide.md#setup, from --url-template
// 'docs/{path}') joined onto CITATION_BASE when the server names one, else none: resolved against this page it
// would open one of the server's own routes, not the document. Local paths and other schemes: none.
function citationHref(source) {
  const s = String(source || "").trim();
  if (/^https?:\/\//i.test(s)) return safeHref(s);
  if (!CITATION_BASE || /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(s) || s.startsWith("/") || s.startsWith("\\")) return null;
  let url;
  try {
    url = new URL(s, CITATION_BASE);
  } catch {
    return null;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
}

// What an [n] of this turn's answer links to: the n-th citation's page (URL#anchor) when it has a web address,
// else the citation in this page.
function citeOptions(turn) {
  return {
    cite: (n) => {
      const c = turn.byNumber.get(n);
      if (!c) return null;
      const href = citationHref(c.source);
      return href
        ? { href, title: citationTitle(c), external: true }
        : { href: `#cite-${turn.li.dataset.turn}-${n}`, title: citationTitle(c), external: false };
    },
  };
}

function renderCitations(turn, citations) {
  turn.byNumber = new Map(citations.map((c) => [c.n, c]));
  const list = turn.citations;
  list.textContent = "";
  for (const c of citations) {
    const li = element("li");
    const details = element("details");
    details.id = `cite-${turn.li.dataset.turn}-${c.n}`;
    // No score: a fused (RRF) score means nothing to a reader; the list's order is the rank.
    const summary = element("summary", "", citationTitle(c));
    details.append(summary, sourceElement(c.source), element("pre", "", c.text));
    li.append(details);
    list.append(li);
  }
  turn.sourcesTitle.hidden = citations.length === 0;
}

function sourceElement(source) {
  const href = citationHref(source);
  const el = element(href ? "a" : "span", "source", source);
  if (href) {
    el.href = href;
    el.target = "_blank";
    el.rel = "noopener noreferrer";
  }
  return el;
}

function showNotice(turn, answer) {
  // Say plainly when the answer is not the model's, or did not pass the grounding check.
  let line = "";
  if (answer.fallback) line = `Extractive answer (quoted from the sources): ${answer.fallback}.`;
  else if (answer.grounded === false) {
    const why = answer.check && answer.check.reason ? `: ${answer.check.reason}` : "";
    line = `This answer did not pass the grounding check${why}. Check it against the sources.`;
  }
  turn.notice.textContent = line;
  turn.notice.hidden = !line;
}

function showError(turn, message) {
  turn.error.textContent = message;
  turn.error.hidden = false;
  turn.status.textContent = "";
  turn.li.dataset.state = "error";
}

function showDraft(turn, shown) {
  turn.draftNote.hidden = !shown;
  turn.answer.classList.toggle("draft", shown);
}

function finishTurn(turn, data, fallbackText) {
  showDraft(turn, false);
  renderCitations(turn, data.citations);
  const text = data.answer || fallbackText || "(no answer)";
  turn.view.finish(text, citeOptions(turn));
  const t = data.timings || {};
  turn.timings.textContent =
    `retrieve ${Math.round((t.retrieve || 0) * 1000)} ms · answer ${(t.generate || 0).toFixed(1)} s · ` +
    // "extractive · none (extractive)" says one thing twice: the model is named only when one was asked.
    (data.llm && !String(data.llm).startsWith("none") ? `${data.mode} · ${data.llm}` : `${data.mode}`);
  showNotice(turn, data);
  turn.status.textContent = "";
  turn.li.dataset.state = "done";
  return text;
}

// -- asking --------------------------------------------------------------------------------------------

async function readEvents(response, onEvent) {
  // Server-Sent Events over a POST response: blocks separated by a blank line; comments (": keep-alive") skipped.
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

function setBusy(busy) {
  $("submit").disabled = busy;
  $("stop").hidden = !busy;
  $("stop").disabled = !busy;
  $("new").hidden = $("turns").children.length === 0;
}

async function ask(event) {
  event.preventDefault();
  if (current) return; // one answer at a time
  const question = $("question").value.trim();
  if (!question) return;
  const body = { query: question, stream: true, history: conversation.slice(-MAX_TURNS) };
  const k = parseInt($("k").value, 10);
  if (k) body.k = k;
  const picked = $("source").selectedOptions[0];
  const source = $("source").value;
  if (source) body.filters = { source };

  // A turn that failed before any answer (no key, server down) is replaced by the question asked again.
  for (const li of $("turns").querySelectorAll("li.turn[data-state=error]")) {
    if (!li.querySelector(".answer").textContent) li.remove();
  }
  const turn = addTurn(question, source ? picked.textContent : "");
  const controller = new AbortController();
  current = { controller, turn };
  $("question").value = "";
  setBusy(true);
  let text = "";
  let draft = ""; // the extract shown while the model writes, until its first piece arrives
  let finished = false;
  let failed = false;
  try {
    const response = await fetch("query", {
      method: "POST",
      headers: headers(true),
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) {
      failed = true;
      showError(turn, await errorMessage(response));
      return;
    }
    await readEvents(response, (name, data) => {
      if (name === "draft") {
        draft = data.text;
        showDraft(turn, true);
        turn.status.textContent = "The model is writing its answer…";
        turn.view.update(draft);
      } else if (name === "token") {
        if (draft) showDraft(turn, false);
        draft = "";
        text += data.text;
        turn.view.update(text);
      } else if (name === "citations") {
        renderCitations(turn, data);
      } else if (name === "done") {
        const answer = finishTurn(turn, data, text);
        conversation.push({ role: "user", content: question }, { role: "assistant", content: answer });
        finished = true;
      } else if (name === "error") {
        failed = true;
        turn.view.finish(text || draft, citeOptions(turn));
        showError(turn, data.error ? data.error.message : "the answer failed");
      }
    });
    if (!finished && !failed) {
      failed = true;
      turn.view.finish(text || draft, citeOptions(turn));
      showError(turn, "the answer ended before it was complete");
    }
  } catch (err) {
    turn.view.finish(text || draft, citeOptions(turn));
    if (err.name === "AbortError") {
      // The stream's connection is closed: the server sees the client leave and stops generating.
      turn.li.dataset.state = "stopped";
      turn.stopped.hidden = false;
      turn.status.textContent = "";
    } else {
      failed = true;
      showError(turn, `cannot reach the service: ${err.message}`);
    }
  } finally {
    if (failed && !$("question").value) $("question").value = question; // to ask again
    if (current && current.turn === turn) { // not when a new conversation took over meanwhile
      current = null;
      setBusy(false);
    }
    $("question-label").textContent = conversation.length ? "Follow-up question" : "Question";
  }
}

function stop() {
  if (current) current.controller.abort();
}

function newConversation() {
  stop();
  current = null;
  conversation.length = 0;
  $("turns").textContent = "";
  $("conversation").hidden = true;
  setBusy(false);
  $("question-label").textContent = "Question";
  $("question").focus();
}

// -- the source filter, from the index's own sources ---------------------------------------------------

function folderOf(source) {
  const scheme = source.indexOf("://");
  const path = scheme >= 0 ? source.indexOf("/", scheme + 3) : 0;
  const cut = source.lastIndexOf("/");
  return path >= 0 && cut >= path ? source.slice(0, cut + 1) : source;
}

async function loadSources() {
  const select = $("source");
  const note = $("sources-note");
  const previous = select.value;
  let listing;
  try {
    const response = await fetch(`sources?limit=${SOURCE_LIMIT}`, { headers: headers(false) });
    if (!response.ok) {
      note.textContent = `The sources could not be listed: ${await errorMessage(response)}`;
      return;
    }
    listing = await response.json();
  } catch (err) {
    note.textContent = `The sources could not be listed: ${err.message}`;
    return;
  }
  select.textContent = "";
  select.append(new Option("All sources", ""));
  const groups = new Map();
  for (const s of listing.sources) {
    const folder = folderOf(s.source);
    if (!groups.has(folder)) groups.set(folder, []);
    groups.get(folder).push(s);
  }
  for (const [folder, entries] of groups) {
    const group = document.createElement("optgroup");
    group.label = folder;
    if (entries.length > 1) {
      const all = new Option(`Everything under ${folder}`, folder);
      group.append(all);
    }
    for (const s of entries) {
      const name = s.title || s.source.slice(folder.length) || s.source;
      const option = new Option(name, s.source);
      option.title = s.source;
      group.append(option);
    }
    select.append(group);
  }
  select.value = [...select.options].some((o) => o.value === previous) ? previous : "";
  const shown = listing.sources.length;
  note.textContent = listing.truncated
    ? `${shown} of ${listing.total} documents listed; a folder covers the rest under it.`
    : `${shown} document${shown === 1 ? "" : "s"} in the index.`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("apikey").value = sessionStorage.getItem(KEY_STORE) || "";
  $("apikey").addEventListener("change", (e) => {
    const v = e.target.value.trim();
    if (v) sessionStorage.setItem(KEY_STORE, v); else sessionStorage.removeItem(KEY_STORE);
    loadSources(); // another key may see other sources
  });
  $("ask").addEventListener("submit", ask);
  $("new").addEventListener("click", newConversation);
  $("stop").addEventListener("click", stop);
  $("source").addEventListener("change", () => {
    const picked = $("source").selectedOptions[0];
    $("scope").textContent = $("source").value ? `Searching in ${picked.textContent}` : "";
  });
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask").requestSubmit(); }
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") stop(); });
  // An [n] whose source is not a web page points at the citation below: open it.
  $("turns").addEventListener("click", (e) => {
    const a = e.target.closest("a.cite");
    const target = a && a.getAttribute("href").startsWith("#") ? document.getElementById(a.hash.slice(1)) : null;
    if (target) target.open = true;
  });
  loadSources();
  $("question").focus();
});
