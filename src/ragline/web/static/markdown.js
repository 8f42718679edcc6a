// A small Markdown renderer for answers: paragraphs, headings, lists, quotes, code, emphasis, links and [n]
// citation markers. It builds DOM nodes only (createElement, text nodes): text is never parsed as HTML, so
// an answer holding <img onerror=...> or <script> shows it as text. Links follow safeHref below.
"use strict";

// A link goes only to http(s) pages or to paths relative to this server; anything else (javascript:, data:,
// a local file path such as /srv/docs/a.md) is shown as text, never followed.
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

const RaglineMarkdown = (() => {
  const MAX_DEPTH = 6; // nested lists and quotes deeper than this are shown as text

  const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`]*)$/;
  const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
  const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
  const QUOTE = /^ {0,3}> ?(.*)$/;
  const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])([ \t]+(.*)|[ \t]*)$/;
  const BLANK = /^[ \t]*$/;

  function indentOf(line) {
    const m = /^[ \t]*/.exec(line)[0];
    return m.replace(/\t/g, "    ").length;
  }

  function dedent(line, n) {
    let i = 0;
    let col = 0;
    while (i < line.length && col < n && (line[i] === " " || line[i] === "\t")) {
      col += line[i] === "\t" ? 4 : 1;
      i += 1;
    }
    return line.slice(i);
  }

  function startsBlock(line) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
  }

  // Blocks of a list of lines: {type, raw, ...}. `raw` is the block's own source, so that a renderer fed a
  // growing text (a stream) can keep the nodes of blocks that did not change.
  function parseBlocks(lines) {
    const blocks = [];
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      const start = i;
      if (BLANK.test(line)) { i += 1; continue; }
      let m;
      if ((m = FENCE.exec(line))) {
        const marker = m[1];
        const close = new RegExp(`^ {0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}[ \\t]*$`);
        const body = [];
        i += 1;
        let closed = false;
        while (i < lines.length) {
          if (close.test(lines[i])) { closed = true; i += 1; break; }
          body.push(lines[i]);
          i += 1;
        }
        blocks.push({ type: "code", lang: m[2].trim().split(/\s+/)[0] || "", text: body.join("\n"), closed });
      } else if ((m = HEADING.exec(line))) {
        blocks.push({ type: "heading", level: m[1].length, text: m[2] || "" });
        i += 1;
      } else if (RULE.test(line)) {
        blocks.push({ type: "rule" });
        i += 1;
      } else if (QUOTE.test(line)) {
        const inner = [];
        while (i < lines.length && (m = QUOTE.exec(lines[i]))) { inner.push(m[1]); i += 1; }
        blocks.push({ type: "quote", lines: inner });
      } else if (ITEM.test(line)) {
        i = parseList(lines, i, blocks);
      } else {
        const text = [line];
        i += 1;
        while (i < lines.length && !BLANK.test(lines[i]) && !startsBlock(lines[i])) { text.push(lines[i]); i += 1; }
        blocks.push({ type: "paragraph", text: text.join("\n") });
      }
      blocks[blocks.length - 1].raw = lines.slice(start, i).join("\n");
    }
    return blocks;
  }

  function parseList(lines, i, blocks) {
    const first = ITEM.exec(lines[i]);
    const ordered = /\d/.test(first[2]);
    const delimiter = first[2].slice(-1); // "-", "*", "+", "." or ")": another one starts another list
    const items = [];
    let loose = false;
    let width = 0; // where an item's content starts: its continuation lines are indented that far
    const base = first[1].length; // the markers' own indent
    while (i < lines.length) {
      const line = lines[i];
      const m = ITEM.exec(line);
      if (m && indentOf(line) < (items.length ? width : 4) && /\d/.test(m[2]) === ordered && m[2].slice(-1) === delimiter) {
        const gap = m[3].length - (m[4] || "").length;
        width = m[1].length + m[2].length + (gap >= 1 && gap <= 4 ? gap : 1);
        items.push({ number: ordered ? parseInt(m[2], 10) : null, lines: [m[4] || ""] });
        i += 1;
      } else if (BLANK.test(line)) {
        // A blank line continues the list when what follows belongs to it (an item, or indented content).
        let j = i + 1;
        while (j < lines.length && BLANK.test(lines[j])) j += 1;
        if (j >= lines.length) break;
        const next = ITEM.exec(lines[j]);
        const sameList = next && indentOf(lines[j]) < width && /\d/.test(next[2]) === ordered
          && next[2].slice(-1) === delimiter;
        if (!sameList && indentOf(lines[j]) < width) break;
        loose = true;
        for (; i < j; i += 1) items[items.length - 1].lines.push("");
      } else if (indentOf(line) >= width || (m && indentOf(line) > base)) {
        // content of the item; an item of another kind indented under it (by less than `width`) is nested
        items[items.length - 1].lines.push(dedent(line, width));
        i += 1;
      } else if (!startsBlock(line) && !BLANK.test(lines[i - 1])) {
        items[items.length - 1].lines.push(line.trim()); // a paragraph's lazy continuation
        i += 1;
      } else {
        break;
      }
    }
    const start = items.length && items[0].number !== null ? items[0].number : 1;
    blocks.push({ type: "list", ordered, start, items, loose });
    return i;
  }

  // -- inline ---------------------------------------------------------------------------------------------

  const CITE = /^\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/;
  const LINK = /^\[([^\[\]\n]{1,500})\]\(\s*<?([^\s()<>]{1,2000})>?(?:\s+"[^"\n]*")?\s*\)/;
  const AUTOLINK = /^<(https?:\/\/[^\s<>]{1,2000})>/i;
  const BARE_URL = /^https?:\/\/[^\s<>()\[\]{}"'`]{1,2000}/i;
  const ESCAPABLE = "\\`*_{}[]()#+-.!>~|<\"'";

  function isSpace(ch) { return ch === undefined || /\s/.test(ch); }
  function isWordChar(ch) { return ch !== undefined && /[\p{L}\p{N}]/u.test(ch); }

  function link(href, title) {
    const a = document.createElement("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    if (title) a.title = title;
    return a;
  }

  // Render `text` into `parent`. ctx.cite(n) gives {href, title, external} for a citation the answer may link to.
  function inline(text, parent, ctx, depth) {
    let plain = "";
    const flush = () => { if (plain) { parent.append(document.createTextNode(plain)); plain = ""; } };
    // Delimiters searched for and not closed: no later opener of that kind can close either, which keeps text
    // such as "*a *b *c ..." linear instead of quadratic.
    const unclosed = {};
    let i = 0;
    while (i < text.length) {
      const ch = text[i];
      if (!"\\\n`[<*_hH".includes(ch)) { plain += ch; i += 1; continue; }
      const rest = text.slice(i);
      let m;
      if (ch === "\\" && i + 1 < text.length && ESCAPABLE.includes(text[i + 1])) {
        plain += text[i + 1];
        i += 2;
      } else if (ch === "\n") {
        flush();
        parent.append(document.createElement("br"));
        i += 1;
      } else if (ch === "`") {
        const run = /^`+/.exec(rest)[0];
        const close = unclosed[run] ? -1 : codeEnd(text, i + run.length, run);
        if (close === -1) { unclosed[run] = true; plain += run; i += run.length; continue; }
        flush();
        const code = document.createElement("code");
        let body = text.slice(i + run.length, close).replace(/\n/g, " ");
        if (/^ .* $/.test(body) && body.trim()) body = body.slice(1, -1);
        code.textContent = body;
        parent.append(code);
        i = close + run.length;
      } else if (ch === "[" && (m = CITE.exec(rest)) && citation(m, parent, ctx, flush)) {
        i += m[0].length;
      } else if (ch === "[" && (m = LINK.exec(rest))) {
        flush();
        const href = safeHref(m[2]);
        const target = href ? link(href, m[2]) : parent; // an unsafe link keeps its text only
        if (href) parent.append(target);
        if (depth < MAX_DEPTH) inline(m[1], target, ctx, depth + 1);
        else target.append(document.createTextNode(m[1]));
        i += m[0].length;
      } else if (ch === "<" && (m = AUTOLINK.exec(rest)) && safeHref(m[1])) {
        flush();
        const a = link(safeHref(m[1]), "");
        a.textContent = m[1];
        parent.append(a);
        i += m[0].length;
      } else if ((ch === "h" || ch === "H") && !isWordChar(text[i - 1]) && (m = BARE_URL.exec(rest))) {
        const url = m[0].replace(/[.,;:!?]+$/, "");
        const href = safeHref(url);
        if (href) {
          flush();
          const a = link(href, "");
          a.textContent = url;
          parent.append(a);
        } else {
          plain += url;
        }
        i += url.length;
      } else if ((ch === "*" || ch === "_") && depth < MAX_DEPTH) {
        const run = (ch === "*" ? /^\*{1,3}/ : /^_{1,3}/).exec(rest)[0];
        const close = emphasisEnd(text, i, run, unclosed);
        if (close === -1) { plain += run; i += run.length; continue; }
        flush();
        let inner = parent;
        if (run.length >= 2) { const strong = document.createElement("strong"); inner.append(strong); inner = strong; }
        if (run.length !== 2) { const em = document.createElement("em"); inner.append(em); inner = em; }
        inline(text.slice(i + run.length, close), inner, ctx, depth + 1);
        i = close + run.length;
      } else {
        plain += ch;
        i += 1;
      }
    }
    flush();
  }

  // Where the code span whose opening run ends at `from` closes: a run of exactly as many backticks, or -1.
  function codeEnd(text, from, run) {
    let at = text.indexOf(run, from);
    while (at !== -1 && (text[at + run.length] === "`" || text[at - 1] === "`")) {
      let after = at;
      while (text[after] === "`") after += 1;
      at = text.indexOf(run, after);
    }
    return at;
  }

  // The index of the run that closes the emphasis opened at `i`, or -1.
  function emphasisEnd(text, i, run, unclosed) {
    const ch = run[0];
    const after = text[i + run.length];
    if (isSpace(after)) return -1; // "a * b" is not emphasis
    if (ch === "_" && isWordChar(text[i - 1])) return -1; // snake_case stays as it is
    if (unclosed[run]) return -1;
    let from = i + run.length + 1;
    for (;;) {
      const at = text.indexOf(run, from);
      if (at === -1) { unclosed[run] = true; return -1; }
      const longer = text[at + run.length] === ch || text[at - 1] === ch;
      const closes = !isSpace(text[at - 1]) && !longer && !(ch === "_" && isWordChar(text[at + run.length]));
      if (closes) return at;
      from = at + 1;
    }
  }

  // [1] or [1, 2]: links to the cited sources when every number is a citation; false leaves it as text.
  function citation(m, parent, ctx, flush) {
    const numbers = m[1].split(",").map((s) => parseInt(s, 10));
    const targets = numbers.map((n) => (ctx.cite ? ctx.cite(n) : null));
    if (!targets.every(Boolean)) return false;
    flush();
    parent.append(document.createTextNode("["));
    numbers.forEach((n, k) => {
      if (k) parent.append(document.createTextNode(", "));
      const a = document.createElement("a");
      a.className = "cite";
      a.href = targets[k].href;
      if (targets[k].external) { a.target = "_blank"; a.rel = "noopener noreferrer"; }
      a.title = targets[k].title || "";
      a.dataset.n = String(n);
      a.textContent = String(n);
      parent.append(a);
    });
    parent.append(document.createTextNode("]"));
    return true;
  }

  // -- blocks ---------------------------------------------------------------------------------------------

  function renderBlock(block, ctx, depth, tight) {
    switch (block.type) {
      case "code": {
        const pre = document.createElement("pre");
        const code = document.createElement("code");
        const lang = block.lang.replace(/[^A-Za-z0-9_+-]/g, "").slice(0, 30);
        if (lang) { code.className = `language-${lang}`; pre.dataset.lang = lang; }
        code.textContent = block.text;
        pre.append(code);
        return pre;
      }
      case "heading": {
        // h3 at most: the page's own headings stay above the answer's
        const h = document.createElement(`h${Math.min(block.level + 2, 6)}`);
        inline(block.text, h, ctx, depth);
        return h;
      }
      case "rule":
        return document.createElement("hr");
      case "quote": {
        const q = document.createElement("blockquote");
        if (depth >= MAX_DEPTH) q.textContent = block.lines.join("\n");
        else q.append(renderBlocks(parseBlocks(block.lines), ctx, depth + 1, false));
        return q;
      }
      case "list": {
        const list = document.createElement(block.ordered ? "ol" : "ul");
        if (block.ordered && block.start !== 1) list.start = block.start;
        for (const item of block.items) {
          const li = document.createElement("li");
          if (depth >= MAX_DEPTH) li.textContent = item.lines.join("\n");
          else li.append(renderBlocks(parseBlocks(item.lines), ctx, depth + 1, !block.loose));
          list.append(li);
        }
        return list;
      }
      default: {
        if (tight) { // a tight list item's text sits in the item itself, without a paragraph
          const span = document.createElement("span");
          inline(block.text, span, ctx, depth);
          return span;
        }
        const p = document.createElement("p");
        inline(block.text, p, ctx, depth);
        return p;
      }
    }
  }

  function renderBlocks(blocks, ctx, depth, tight) {
    const out = document.createDocumentFragment();
    for (const block of blocks) out.append(renderBlock(block, ctx, depth, tight));
    return out;
  }

  function splitLines(text) {
    return String(text || "").replace(/\r\n?/g, "\n").split("\n");
  }

  /** A DocumentFragment of `text` rendered; options.cite(n) -> {href, title, external} or null. */
  function render(text, options) {
    return renderBlocks(parseBlocks(splitLines(text)), options || {}, 0, false);
  }

  /** Renders a growing text into `container`, at most once a frame, redrawing only the blocks that changed. */
  class View {
    constructor(container, options) {
      this.container = container;
      this.options = options || {};
      this.text = "";
      this.shown = []; // [{raw, node}] in order
      this.frame = 0;
    }

    // Show `text` soon (streaming): several tokens in one frame cost one render.
    update(text) {
      this.text = text;
      if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
    }

    // Show `text` now, with new options (citations that just arrived re-render every block).
    finish(text, options) {
      if (this.frame) { cancelAnimationFrame(this.frame); this.frame = 0; }
      if (options) { this.options = options; this.clear(); }
      this.text = text;
      this.draw();
    }

    clear() {
      this.container.textContent = "";
      this.shown = [];
    }

    draw() {
      const blocks = parseBlocks(splitLines(this.text));
      let keep = 0;
      while (keep < blocks.length && keep < this.shown.length && this.shown[keep].raw === blocks[keep].raw) keep += 1;
      for (const old of this.shown.splice(keep)) old.node.remove();
      for (const block of blocks.slice(keep)) {
        // a wrapper per block, so that a block rendered to several nodes is replaced as one
        const node = document.createElement("div");
        node.className = "md-block";
        node.append(renderBlock(block, this.options, 0, false));
        this.container.append(node);
        this.shown.push({ raw: block.raw, node });
      }
    }
  }

  return { render, View, parseBlocks };
})();

