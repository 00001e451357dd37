// netspec view: one level of folding at a time (each laid out by Graphviz), a tooltip, a totals bar, search,
// and links into the spec's source.  Text from the spec is only ever set with textContent.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const entities = data.entities;
  const graph = document.getElementById("graph");
  const tip = document.getElementById("tip");
  const info = document.getElementById("info");
  const totals = document.getElementById("totals");
  const search = document.getElementById("search");
  const results = document.getElementById("results");
  const source = document.getElementById("source");
  const tabs = document.getElementById("file-tabs");
  const levelButtons = document.getElementById("level-buttons");
  let level = -1, selected = -1, zoom = 1, shownFile = -1;

  // Which levels draw entity k as a box ("node") or as an open block ("cluster"); a level's SVG is parsed
  // the first time it is shown.
  const drawnAs = entities.map((e) => e.at);
  const parser = new DOMParser();
  const parsed = [];
  const levelCount = data.levels.length;
  function svgOf(i) {
    if (!parsed[i]) {
      const doc = parser.parseFromString(data.levels[i].svg, "image/svg+xml");
      parsed[i] = document.importNode(doc.documentElement, true);
      prepare(parsed[i]);
    }
    return parsed[i];
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function count(n) {
    for (const [unit, size] of [["G", 1e9], ["M", 1e6], ["K", 1e3]]) if (n >= size) return (n / size).toFixed(2) + unit;
    return String(n);
  }
  const grouped = (n) => n.toLocaleString("en-US");
  const share = (part, whole) => (whole ? (100 * part / whole).toFixed(1) : "0.0") + "%";

  // ── levels ──────────────────────────────────────────────────────────────────────────────────────────────────
  function element(k) { return graph.querySelector("#v" + k); }

  function show(i, anchor) {
    if (i === level || i < 0 || i >= levelCount) return;
    const before = anchor !== undefined && element(anchor) ? element(anchor).getBoundingClientRect() : null;
    graph.replaceChildren(svgOf(i));
    level = i;
    applyZoom();
    levelButtons.querySelectorAll("button").forEach((b, j) => b.setAttribute("aria-pressed", String(j === i)));
    if (selected >= 0 && element(selected)) element(selected).classList.add("selected");
    const svg = svgOf(i);
    svg.style.margin = "8px";
    if (before) keepInPlace(svg, element(anchor), before);
  }

  // Scrolls so that `g` is where `before` was on screen.  Where scrolling cannot go far enough (the drawing
  // begins or ends too soon) the whole drawing is shifted by a margin: it moves as one, as Graphviz laid it out.
  function keepInPlace(svg, g, before) {
    const after = g.getBoundingClientRect();
    const axes = [["left", "Left", "Right", "Width", after.left - before.left],
                  ["top", "Top", "Bottom", "Height", after.top - before.top]];
    for (const [, start, end, size, delta] of axes) {
      const want = graph["scroll" + start] + delta;
      if (want < 0) {
        svg.style["margin" + start] = 8 - want + "px";
        graph["scroll" + start] = 0;
        continue;
      }
      const room = graph["scroll" + size] - graph["client" + size];
      if (want > room) svg.style["margin" + end] = 8 + want - room + "px";
      graph["scroll" + start] = want;
    }
  }

  function prepare(svg) {
    svg.querySelectorAll("g.node[id^='v'], g.cluster[id^='v']").forEach((g) => {
      const k = +g.id.slice(1), e = entities[k];
      g.setAttribute("tabindex", "0");
      g.setAttribute("role", "button");
      const open = g.classList.contains("cluster");
      g.setAttribute("aria-label", e.name + " (" + e.op + ")" + (e.kind === "block" ? (open ? ", open" : ", closed") : ""));
      if (e.diff) g.classList.add("diff-" + e.diff);
      g.addEventListener("mouseenter", (ev) => showTip(k, ev.clientX, ev.clientY));
      g.addEventListener("mousemove", (ev) => placeTip(ev.clientX, ev.clientY));
      g.addEventListener("mouseleave", hideTip);
      g.addEventListener("focus", () => { const r = g.getBoundingClientRect(); showTip(k, r.right, r.top); });
      g.addEventListener("blur", hideTip);
      g.addEventListener("click", (ev) => { ev.stopPropagation(); activate(k, g); });
      g.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); activate(k, g); }
      });
    });
    svg.setAttribute("data-width", svg.getAttribute("width"));
    svg.setAttribute("data-height", svg.getAttribute("height"));
  }

  function activate(k, g) {
    select(k);
    if (entities[k].kind !== "block") return;
    const open = g.classList.contains("cluster");
    const levels = Object.keys(drawnAs[k]).map(Number);
    const target = open
      ? Math.max(-1, ...levels.filter((i) => i < level && drawnAs[k][i] === "node"))
      : Math.min(Infinity, ...levels.filter((i) => i > level && drawnAs[k][i] === "cluster"));
    if (target >= 0 && target < levelCount) {
      hideTip();
      show(target, k);
      const now = element(k);
      if (now) now.focus({ preventScroll: true });
    }
  }

  function reveal(k) {
    const levels = Object.keys(drawnAs[k]).map(Number);
    if (!levels.length) return;
    if (!(level in drawnAs[k])) show(levels.reduce((a, b) => (Math.abs(b - level) < Math.abs(a - level) ? b : a)));
    select(k);
    const g = element(k);
    g.scrollIntoView({ block: "center", inline: "center" });
    g.classList.add("found");
    setTimeout(() => g.classList.remove("found"), 1500);
    g.focus({ preventScroll: true });
  }

  function applyZoom() {
    const svg = graph.firstElementChild;
    if (!svg) return;
    for (const side of ["width", "height"]) {
      svg.setAttribute(side, parseFloat(svg.getAttribute("data-" + side)) * zoom + "pt");
    }
  }
  function setZoom(factor) { zoom = Math.min(4, Math.max(0.2, zoom * factor)); applyZoom(); }

  // ── tooltip, selection, totals ──────────────────────────────────────────────────────────────────────────────
  function describe(k, into) {
    const e = entities[k];
    into.append(el("div", e.name, "name"));
    const what = e.kind === "block" ? e.op + (e.count > 1 ? " ×" + e.count : "") : e.op;
    into.append(el("div", what + (e.kind === "block" ? " (block)" : "")));
    if (e.args.length) into.append(el("div", e.args.join(" "), "args"));
    into.append(el("div", (e.kind === "block" ? "shapes " : "output ") + e.shape));
    into.append(el("div", grouped(e.params) + " params · " + count(e.macs) + " MACs"));
    if (e.diff) into.append(el("div", e.diff));
  }
  function showTip(k, x, y) {
    tip.replaceChildren();
    describe(k, tip);
    tip.hidden = false;
    placeTip(x, y);
  }
  function placeTip(x, y) {
    const w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(4, Math.min(x + 14, window.innerWidth - w - 4)) + "px";
    tip.style.top = Math.max(4, Math.min(y + 14, window.innerHeight - h - 4)) + "px";
  }
  function hideTip() { tip.hidden = true; }

  function showTotals() {
    totals.replaceChildren(el("b", grouped(data.params)), " params · ", el("b", count(data.macs)), " MACs · input " +
      data.input + " → output " + data.output);
    if (selected >= 0) {
      const e = entities[selected];
      totals.append(" · selected ", el("b", e.name), ": " + grouped(e.params) + " params (" + share(e.params, data.params) +
        "), " + count(e.macs) + " MACs (" + share(e.macs, data.macs) + ")");
    }
  }

  function select(k) {
    graph.querySelectorAll("g.selected").forEach((g) => g.classList.remove("selected"));
    selected = k;
    if (element(k)) element(k).classList.add("selected");
    const e = entities[k];
    info.replaceChildren(el("h2", e.name));
    const dl = el("dl");
    const row = (term, value) => { dl.append(el("dt", term)); const dd = el("dd"); dd.append(value); dl.append(dd); };
    row(e.kind === "block" ? "block" : "op", e.op + (e.count > 1 ? " ×" + e.count + " (folded)" : ""));
    if (e.args.length) row("arguments", e.args.join(", "));
    row(e.kind === "block" ? "shapes" : "output", e.shape);
    row("params", grouped(e.params) + " (" + share(e.params, data.params) + ")");
    row("MACs", count(e.macs) + " (" + share(e.macs, data.macs) + ")");
    if (e.diff) row("diff", e.diff);
    e.links.forEach(([label, file, line]) => {
      const a = el("a", data.files[file][0] + ":" + line, "src-link");
      a.href = "#L" + file + "-" + line;
      a.addEventListener("click", (ev) => { ev.preventDefault(); showSource(file, line, true); });
      row(label, a);
    });
    info.append(dl);
    // after the panel above it has its final height, or the line could land below the visible part
    if (e.links.length) showSource(e.links[0][1], e.links[0][2], false);
    showTotals();
  }

  // ── source ──────────────────────────────────────────────────────────────────────────────────────────────────
  const fileLines = data.files.map(([, text]) => text.split("\n"));
  function showFile(f) {
    if (f === shownFile) return;
    shownFile = f;
    source.replaceChildren(...fileLines[f].map((line, i) => {
      const span = el("span", line === "" ? " " : line, "ln");
      span.id = "L" + f + "-" + (i + 1);
      return span;
    }));
    tabs.querySelectorAll("button").forEach((b, j) => b.setAttribute("aria-selected", String(j === f)));
  }
  function showSource(f, line, focus) {
    showFile(f);
    source.querySelectorAll(".hl").forEach((s) => s.classList.remove("hl"));
    const span = document.getElementById("L" + f + "-" + line);
    if (!span) return;
    span.classList.add("hl");
    const top = span.offsetTop - source.clientHeight / 3;
    source.scrollTop = Math.max(0, top);
    if (focus) source.focus({ preventScroll: true });
  }
  data.files.forEach(([name], f) => {
    const b = el("button", name);
    b.type = "button";
    b.setAttribute("role", "tab");
    b.addEventListener("click", () => showFile(f));
    tabs.append(b);
  });

  // ── search ──────────────────────────────────────────────────────────────────────────────────────────────────
  function find(query) {
    const q = query.trim().toLowerCase();
    results.replaceChildren();
    if (!q) return [];
    const found = [];
    for (let k = 0; k < entities.length && found.length < 30; k++) {
      const e = entities[k];
      if (e.name.toLowerCase().includes(q) || e.op.toLowerCase().includes(q)) found.push(k);
    }
    for (const k of found) {
      const li = el("li"), b = el("button");
      b.type = "button";
      b.setAttribute("role", "option");
      b.append(el("span", entities[k].name), el("span", entities[k].op, "op"));
      b.addEventListener("click", () => { results.replaceChildren(); reveal(k); });
      b.addEventListener("keydown", (ev) => {
        const items = [...results.querySelectorAll("button")], at = items.indexOf(b);
        if (ev.key === "ArrowDown" && at + 1 < items.length) { ev.preventDefault(); items[at + 1].focus(); }
        if (ev.key === "ArrowUp") { ev.preventDefault(); (at > 0 ? items[at - 1] : search).focus(); }
        if (ev.key === "Escape") { results.replaceChildren(); search.focus(); }
      });
      li.append(b);
      results.append(li);
    }
    if (!found.length) results.append(el("li", "no match", "hint"));
    return found;
  }
  search.addEventListener("input", () => find(search.value));
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { const found = find(search.value); if (found.length) { results.replaceChildren(); reveal(found[0]); } }
    if (ev.key === "ArrowDown") { const first = results.querySelector("button"); if (first) { ev.preventDefault(); first.focus(); } }
    if (ev.key === "Escape") { search.value = ""; results.replaceChildren(); }
  });

  // ── toolbar, keys ───────────────────────────────────────────────────────────────────────────────────────────
  data.levels.forEach((lvl, i) => {
    const b = el("button", lvl.depth === null ? "full" : "depth " + lvl.depth);
    b.type = "button";
    b.title = lvl.depth === null ? "every op" : "blocks nested deeper than " + lvl.depth + " as one box each";
    b.addEventListener("click", () => show(i));
    levelButtons.append(b);
  });
  document.getElementById("collapse-all").addEventListener("click", () => show(0));
  document.getElementById("expand-all").addEventListener("click", () => show(levelCount - 1));
  document.getElementById("zoom-in").addEventListener("click", () => setZoom(1.25));
  document.getElementById("zoom-out").addEventListener("click", () => setZoom(0.8));
  document.addEventListener("keydown", (ev) => {
    const typing = ev.target === search || ev.target.tagName === "INPUT";
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "/") { ev.preventDefault(); search.focus(); }
    else if (ev.key === "e") show(levelCount - 1);
    else if (ev.key === "c") show(0);
    else if (ev.key === "+" || ev.key === "=") setZoom(1.25);
    else if (ev.key === "-") setZoom(0.8);
    else if (ev.key === "Escape") { hideTip(); results.replaceChildren(); }
  });
  document.addEventListener("click", (ev) => { if (!results.contains(ev.target) && ev.target !== search) results.replaceChildren(); });

  if (data.diff) {
    const legend = document.getElementById("diff-legend");
    for (const state of ["added", "changed", "removed"]) {
      legend.append(el("span", "", "swatch " + state), el("span", state + " " + data.diff[state]));
    }
    if (data.removed.length) legend.title = "removed: " + data.removed.join(", ");
  }

  document.getElementById("title").textContent = data.name;
  document.title = data.name + " — netspec view";
  showTotals();
  showFile(0);
  show(0);
})();
