// chatocr review: the page of `chatocr review RESULTS`. Everything from a document or a model is
// written with textContent or as an attribute, never parsed as HTML. Corrections go to the server
// as they are made (api/documents/N/events); the server appends them to the review file.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = {
  token: "",
  summary: null,
  current: null,
  doc: null,
  selected: null,
  draft: null, // {value, lines: [line ids]} for the selected field, until saved or cancelled
  undo: [], // [{number, event}] corrections made in this tab, last first out
  busy: false,
  first: true,
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

function shown(value) {
  if (value === null || value === undefined) return null;
  return typeof value === "string" ? value : JSON.stringify(value);
}

function say(message, isError) {
  const status = document.getElementById("status");
  status.textContent = message || "";
  status.classList.toggle("error", Boolean(isError));
}

function setBusy(busy) {
  state.busy = busy;
  document.documentElement.dataset.busy = busy ? "true" : "false";
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Review-Token": state.token },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (error) { data = null; }
  if (!response.ok) {
    const problem = data && data.error ? data.error.message + (data.error.hint ? " " + data.error.hint : "")
      : data && data.detail ? String(data.detail) : response.status + " " + response.statusText;
    throw new Error(problem);
  }
  return data;
}

// -- the document list ------------------------------------------------------------------------

function renderSidebar() {
  const list = document.getElementById("doc-list");
  list.replaceChildren();
  let done = 0;
  for (const item of state.summary.documents) {
    const complete = item.fields > 0 && item.reviewed === item.fields;
    if (complete) done += 1;
    const li = el("li", { "data-number": String(item.number), title: item.name },
      el("span", { class: "name", text: item.name }),
      el("span", { class: "count", text: item.reviewed + "/" + item.fields }),
      item.needing ? el("span", { class: "needing", text: String(item.needing), title: "fields to check" }) : null);
    if (complete) li.classList.add("done");
    if (!item.ok) li.classList.add("failed");
    if (item.number === state.current) li.classList.add("current");
    li.addEventListener("click", () => openDocument(item.number));
    list.append(li);
  }
  document.getElementById("progress").textContent =
    done + " of " + state.summary.documents.length + " documents reviewed";
  const problems = document.getElementById("file-problems");
  problems.replaceChildren();
  for (const p of [...state.summary.problems, ...state.summary.review_problems]) {
    problems.append(el("div", { text: "line " + p.line + ": " + p.problem }));
  }
}

function updateSummary(view) {
  const item = state.summary.documents[view.number];
  item.reviewed = view.reviewed;
  item.needing = view.fields.filter((f) => f.needs_review && !f.review).length;
  renderSidebar();
}

// -- one document ----------------------------------------------------------------------------

function fieldByName(name) {
  return state.doc ? state.doc.fields.find((f) => f.name === name) || null : null;
}

function currentValue(field) {
  return field.review ? field.review.value : field.value;
}

function linesOf(field) {
  if (field.review && field.review.state === "fixed") return field.review.lines;
  return field.boxes;
}

function nextOpenField(after) {
  const fields = state.doc.fields;
  const start = after ? fields.findIndex((f) => f.name === after) + 1 : 0;
  for (let i = 0; i < fields.length; i += 1) {
    const field = fields[(start + i) % fields.length];
    if (!field.review) return field.name;
  }
  return after || (fields[0] ? fields[0].name : null);
}

async function openDocument(number) {
  if (state.busy || !state.summary || number < 0 || number >= state.summary.documents.length) return;
  setBusy(true);
  try {
    const view = await api("api/documents/" + number);
    state.current = number;
    state.doc = view;
    state.draft = null;
    state.selected = nextOpenField(null);
    history.replaceState(null, "", "#" + number);
    render();
    renderSidebar();
    say("");
  } catch (error) {
    say(error.message, true);
  } finally {
    setBusy(false);
  }
}

function render() {
  const view = state.doc;
  const main = document.getElementById("document");
  const head = el("div", { class: "doc-head" },
    el("h2", { text: view.name }),
    el("div", { class: "meta", text: [view.path, view.scenario ? "scenario " + view.scenario : null,
      view.page ? "page " + view.page : null].filter(Boolean).join(" · ") }));
  if (view.error) head.append(el("p", { class: "error-box", text: view.error.message + " " + (view.error.hint || "") }));
  if (view.notes.length) head.append(el("ul", { class: "notes" }, ...view.notes.map((n) => el("li", { text: n }))));
  if (view.memory) head.append(el("p", { class: "memory", text: "memory: " + view.memory }));
  if (view.warnings.length) head.append(el("ul", { class: "warnings" }, ...view.warnings.map((w) => el("li", { text: w }))));
  const failed = view.checks.filter((c) => c.status === "failed");
  if (failed.length) head.append(el("ul", { class: "checks" }, ...failed.map((c) => el("li", { class: "check", text: c.name + ": " + c.message }))));
  const pages = el("div", { class: "pages" }, ...view.pages.map(renderPage));
  const fields = el("div", { class: "fields" }, renderFields(view),
    el("div", { class: "actions" },
      button("Accept (Enter)", () => commit()),
      button("Accept the rest (A)", () => acceptRest()),
      button("Undo (u)", () => undo())));
  main.replaceChildren(head, el("div", { class: "panes" }, pages, fields));
  highlight();
  document.documentElement.dataset.doc = String(view.number);
  if (state.first) {
    state.first = false;
    const images = [...main.querySelectorAll(".page img")];
    Promise.all(images.map((img) => img.decode().catch(() => null))).then(() => {
      window.__shownAt = performance.now();
      document.documentElement.dataset.shown = "true";
    });
  }
}

function button(label, action) {
  const node = el("button", { type: "button", text: label });
  node.addEventListener("click", (event) => { event.preventDefault(); action(); });
  return node;
}

function renderPage(page) {
  const frame = el("div", { class: "page", "data-page": String(page.index) });
  if (page.image) {
    const img = el("img", { src: page.image, alt: "page " + (page.index + 1), width: page.width, height: page.height });
    img.addEventListener("error", () => {
      // Unreadable after all (or gone since): the lines on a blank page, and a note saying so.
      frame.replaceWith(renderPage({ ...page, image: null }));
      const notes = document.querySelector("#document .notes") || document.querySelector("#document .doc-head").appendChild(el("ul", { class: "notes" }));
      notes.append(el("li", { text: "The page image could not be shown; the lines are drawn on a blank page." }));
    });
    frame.append(img);
  } else {
    frame.append(blank(page));
  }
  const overlay = svg("svg", { viewBox: "0 0 " + page.width + " " + page.height, preserveAspectRatio: "none" });
  for (const line of page.lines) {
    const polygon = svg("polygon", { points: line.points.join(" "), class: "ocr-line", "data-line": line.id });
    const tip = svg("title", {});
    tip.textContent = line.text + " (" + Math.round(line.confidence * 100) + "%)";
    polygon.append(tip);
    polygon.addEventListener("click", (event) => pickLine(line, event.shiftKey));
    overlay.append(polygon);
    if (!page.image) {
      const label = svg("text", { x: line.points[0], y: line.points[7] - 3, class: "line-text" });
      label.textContent = line.text;
      overlay.append(label);
    }
  }
  for (const field of state.doc.fields) {
    for (const box of linesOf(field)) {
      if (box.page !== page.index) continue;
      overlay.append(svg("polygon", {
        points: box.points.join(" "), class: "field-box" + (field.review ? " reviewed" : ""),
        "data-field": field.name, stroke: field.color,
      }));
    }
  }
  frame.append(overlay);
  return frame;
}

function blank(page) {
  const node = el("div", { class: "blank" });
  node.style.aspectRatio = page.width + " / " + page.height;
  return node;
}

function renderFields(view) {
  const table = el("table", { id: "fields" },
    el("thead", {}, el("tr", {}, ...["field", "value", "status", "confidence", "review"].map((h) => el("th", { text: h })))));
  const body = el("tbody");
  for (const field of view.fields) body.append(renderRow(field));
  table.append(body);
  return table;
}

function renderRow(field) {
  const row = el("tr", { class: "field-row", "data-field": field.name });
  const swatch = el("span", { class: "swatch" });
  swatch.style.background = field.color;
  const value = currentValue(field);
  const cell = el("td", {});
  cell.append(el("span", { class: "value" + (value === null ? " none" : ""), text: value === null ? "(none)" : shown(value) }));
  if (field.review && field.review.state === "fixed" && shown(field.value) !== shown(value)) {
    cell.append(el("span", { class: "was", text: field.value === null ? "(none)" : shown(field.value) }));
  }
  for (const check of field.checks) cell.append(el("span", { class: "check", text: "✗ " + check.name + (check.message ? ": " + check.message : "") }));
  if (field.problem && !field.review) cell.append(el("span", { class: "check", text: field.problem }));
  if (field.name === state.selected) {
    row.classList.add("selected");
    const editor = el("input", { class: "editor", type: "text", id: "editor", "data-field": field.name });
    editor.value = state.draft ? (state.draft.value === null ? "" : state.draft.value) : (value === null ? "" : shown(value));
    if (state.draft) editor.classList.add("draft");
    editor.addEventListener("input", () => {
      state.draft = { value: editor.value, lines: state.draft ? state.draft.lines : [] };
      editor.classList.add("draft");
    });
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); event.stopPropagation(); editor.blur(); commit(); }
      else if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); cancelDraft(); }
    });
    cell.append(editor);
  }
  // "to review": the extraction's decision (a calibrated confidence below the accept threshold);
  // "low": a result without decisions, grounded below the report's low-confidence mark.
  const status = field.needs_review && field.status === "grounded" ? (field.decision === "review" ? "review" : "low") : field.status;
  const review = field.review
    ? el("span", { class: "badge review-" + field.review.state, text: field.review.state + (field.review.reviewer ? " · " + field.review.reviewer : "") })
    : null;
  row.append(
    el("td", {}, swatch, el("span", { text: field.name + (field.required ? " *" : "") })),
    cell,
    el("td", {}, el("span", { class: "badge status-" + status, text: status === "low" ? "low confidence" : status === "review" ? "to review" : field.status })),
    el("td", { text: field.confidence === null ? "" : field.confidence.toFixed(2) }),
    el("td", {}, review),
  );
  row.addEventListener("click", (event) => {
    if (event.target.tagName === "INPUT") return;
    select(field.name);
  });
  return row;
}

function highlight() {
  const picked = new Set(state.draft ? state.draft.lines : []);
  for (const node of document.querySelectorAll("#document .ocr-line")) {
    node.classList.toggle("picked", picked.has(node.getAttribute("data-line")));
  }
  for (const node of document.querySelectorAll("#document .field-box")) {
    node.classList.toggle("active", node.getAttribute("data-field") === state.selected);
  }
}

function rerender() {
  const scroll = document.getElementById("document").scrollTop;
  render();
  document.getElementById("document").scrollTop = scroll;
}

function select(name) {
  if (name === state.selected) return;
  state.selected = name;
  state.draft = null;
  rerender();
}

function moveField(step) {
  const fields = state.doc.fields;
  if (!fields.length) return;
  const at = fields.findIndex((f) => f.name === state.selected);
  select(fields[(at + step + fields.length) % fields.length].name);
}

function pickLine(line, append) {
  if (!state.doc || !state.doc.fields.length) return;
  if (!state.selected) state.selected = state.doc.fields[0].name;
  if (append && state.draft && state.draft.value) {
    state.draft = { value: state.draft.value + " " + line.text, lines: [...state.draft.lines, line.id] };
  } else if (append) {
    const field = fieldByName(state.selected);
    const value = shown(currentValue(field));
    state.draft = { value: value ? value + " " + line.text : line.text, lines: [line.id] };
  } else {
    state.draft = { value: line.text, lines: [line.id] };
  }
  rerender();
  say("Enter saves \u201c" + state.draft.value + "\u201d as " + state.selected + "; Esc cancels");
}

function cancelDraft() {
  state.draft = null;
  rerender();
  say("");
}

// -- corrections ------------------------------------------------------------------------------

async function send(actions, fieldsToRemember) {
  if (state.busy) return null;
  setBusy(true);
  const number = state.current;
  try {
    const view = await api("api/documents/" + number + "/events", { actions });
    state.doc = view;
    for (const name of fieldsToRemember) {
      const field = view.fields.find((f) => f.name === name);
      if (field && field.review) state.undo.push({ number, event: field.review.event });
    }
    updateSummary(view);
    say("saved");
    return view;
  } catch (error) {
    say("not saved: " + error.message, true);
    return null;
  } finally {
    setBusy(false);
  }
}

async function commit() {
  const field = fieldByName(state.selected);
  if (!field) return;
  const current = shown(currentValue(field));
  let action = { field: field.name, action: "accept" };
  if (state.draft && (state.draft.value !== current || state.draft.lines.length)) {
    action = { field: field.name, action: "fix", value: typed(field, state.draft.value), lines: state.draft.lines };
  }
  const view = await send([action], [field.name]);
  if (view) {
    state.draft = null;
    state.selected = nextOpenField(field.name);
    rerender();
  }
}

function typed(field, text) {
  if (text === null) return null;
  const value = currentValue(field);
  if (value !== null && typeof value !== "string") {
    try { return JSON.parse(text); } catch (error) { return text; }
  }
  return text;
}

async function markAbsent() {
  const field = fieldByName(state.selected);
  if (!field) return;
  const view = await send([{ field: field.name, action: "fix", value: null, lines: [] }], [field.name]);
  if (view) {
    state.draft = null;
    state.selected = nextOpenField(field.name);
    rerender();
  }
}

async function acceptRest() {
  const open = state.doc.fields.filter((f) => !f.review).map((f) => f.name);
  if (!open.length) { say("every field is reviewed; n for the next document"); return; }
  const view = await send(open.map((name) => ({ field: name, action: "accept" })), open);
  if (view) { state.draft = null; rerender(); }
}

async function undo() {
  const last = state.undo[state.undo.length - 1];
  if (!last) { say("nothing to undo"); return; }
  if (last.number !== state.current) await openDocument(last.number);
  if (state.current !== last.number) return;
  const view = await send([{ action: "undo", event: last.event }], []);
  if (view) {
    state.undo.pop();
    state.draft = null;
    rerender();
    say("undone");
  }
}

// -- keys -------------------------------------------------------------------------------------

function onKey(event) {
  if (event.target && event.target.tagName === "INPUT") return;
  if (!state.doc || event.altKey || event.metaKey) return;
  if (event.ctrlKey && event.key.toLowerCase() === "z") { event.preventDefault(); undo(); return; }
  if (event.ctrlKey) return;
  const actions = {
    j: () => moveField(1), ArrowDown: () => moveField(1),
    k: () => moveField(-1), ArrowUp: () => moveField(-1),
    Enter: () => commit(), a: () => commit(),
    A: () => acceptRest(),
    e: () => { const editor = document.getElementById("editor"); if (editor) { editor.focus(); editor.select(); } },
    d: () => markAbsent(),
    u: () => undo(),
    Escape: () => cancelDraft(),
    n: () => openDocument(state.current + 1), "]": () => openDocument(state.current + 1),
    p: () => openDocument(state.current - 1), "[": () => openDocument(state.current - 1),
  };
  const action = actions[event.key];
  if (action) { event.preventDefault(); action(); }
}

async function start() {
  state.token = document.querySelector('meta[name="review-token"]').content;
  document.addEventListener("keydown", onKey);
  setBusy(true);
  try {
    state.summary = await api("api/documents");
  } catch (error) {
    say(error.message, true);
    setBusy(false);
    return;
  }
  setBusy(false);
  const wanted = Number.parseInt(location.hash.slice(1), 10);
  const count = state.summary.documents.length;
  await openDocument(Number.isInteger(wanted) && wanted >= 0 && wanted < count ? wanted : 0);
  document.documentElement.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", start);
