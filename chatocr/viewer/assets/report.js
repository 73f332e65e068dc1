// chatocr report: draws one document at a time from the JSON in #chatocr-data.
// Every text from a document or a model is set with textContent or as an attribute value, never
// parsed as HTML, so a document whose text is a script tag shows exactly that text.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("chatocr-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const docs = DATA.documents;
  let current = -1;
  let pinned = null;  // the field name whose boxes stay highlighted after a click

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function pointsAttr(flat) {
    const pairs = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pairs.push(flat[i] + "," + flat[i + 1]);
    return pairs.join(" ");
  }

  const fmt = (x, digits) => (x === null || x === undefined ? "" : Number(x).toFixed(digits));
  const STATUS_TEXT = { grounded: "✓ grounded", ungrounded: "? not in document", missing: "– missing", invalid: "✗ invalid" };

  function counts(doc) {
    const out = { grounded: 0, ungrounded: 0, missing: 0, invalid: 0, low: 0, accepted: 0, review: 0, decided: 0 };
    for (const f of doc.fields) {
      out[f.status] = (out[f.status] || 0) + 1;
      if (f.low) out.low += 1;
      if (f.decision) { out.decided += 1; out[f.decision] += 1; }
    }
    return out;
  }

  function docTitle(doc) {
    return doc.page ? doc.name + " · page " + doc.page : doc.name;
  }

  // -- the header summary and the document list ------------------------------------------------

  function renderSummary() {
    const box = document.getElementById("summary");
    const failed = docs.filter((d) => !d.ok).length;
    let fields = 0, grounded = 0, doubtful = 0, tokens = 0, decided = 0, accepted = 0;
    for (const d of docs) {
      const c = counts(d);
      fields += d.fields.length; grounded += c.grounded; doubtful += c.ungrounded + c.invalid + c.low;
      decided += c.decided; accepted += c.accepted;
      tokens += (d.usage && d.usage.total_tokens) || 0;
    }
    box.append(el("span", { class: "pill", text: docs.length + " document" + (docs.length === 1 ? "" : "s") }));
    if (failed) box.append(el("span", { class: "pill bad", text: failed + " failed" }));
    if (decided) {
      // The review queue: "37 of 40 fields accepted, 3 to review"
      box.append(el("span", { class: "pill ok", id: "review-summary",
        text: accepted + " of " + decided + " fields accepted, " + (decided - accepted) + " to review" }));
    } else {
      box.append(el("span", { class: "pill ok", text: grounded + "/" + fields + " fields grounded" }));
      if (doubtful) box.append(el("span", { class: "pill warn", text: doubtful + " to check" }));
    }
    box.append(el("span", { class: "pill", text: tokens + " tokens" }));
  }

  function renderList() {
    const list = document.getElementById("doc-list");
    docs.forEach((doc, i) => {
      const c = counts(doc);
      const meta = el("div", { class: "doc-meta" });
      if (!doc.ok) meta.append(el("span", { class: "bad", text: "failed" }));
      else {
        meta.append(el("span", { text: "✓ " + c.grounded + "/" + doc.fields.length }));
        if (c.review) meta.append(el("span", { class: "warn", text: c.review + " to review" }));
        else if (c.decided) meta.append(el("span", { text: "all accepted" }));
        if (c.ungrounded + c.invalid) meta.append(el("span", { class: "warn", text: "? " + (c.ungrounded + c.invalid) }));
        if (c.low) meta.append(el("span", { class: "warn", text: "low " + c.low }));
      }
      if (doc.scenario) meta.append(el("span", { text: doc.scenario }));
      list.append(el("li", { "data-doc": i, title: doc.source, onclick: () => show(i) },
        el("div", { class: "doc-name", text: docTitle(doc) }), meta));
    });
    document.getElementById("filter").addEventListener("input", (event) => {
      const needle = event.target.value.toLowerCase();
      list.querySelectorAll("li").forEach((li) => {
        const doc = docs[Number(li.dataset.doc)];
        const hay = (doc.source + " " + (doc.scenario || "")).toLowerCase();
        li.hidden = needle !== "" && !hay.includes(needle);
      });
    });
  }

  // -- one document ----------------------------------------------------------------------------

  function renderPage(doc, page) {
    const wrap = el("div", { class: "page", "data-page": page.index });
    const drawing = svg("svg", { viewBox: "0 0 " + page.width + " " + page.height, "data-width": page.width,
      "data-height": page.height, role: "img" });
    drawing.setAttribute("aria-label", docTitle(doc) + " page " + (page.index + 1));
    // Text input: rows of text, not a picture; shown at about reading size rather than stretched.
    if (page.synthetic) drawing.style.maxWidth = Math.max(320, page.width * 1.4) + "px";
    drawing.append(svg("rect", { x: 0, y: 0, width: page.width, height: page.height, fill: "#ffffff" }));
    if (page.image) {
      const image = svg("image", { x: 0, y: 0, width: page.width, height: page.height, preserveAspectRatio: "none" });
      image.setAttribute("href", page.image);
      drawing.append(image);
    }
    const lines = svg("g", { class: "ocr-lines" });
    for (const line of page.lines) {
      if (page.synthetic || !page.image) {
        // No picture: write the OCR text where it was, so the page still reads.
        const height = Math.max(8, line.points[7] - line.points[1]);
        const t = svg("text", { class: "line-text", x: line.points[0] + height * 0.15, y: line.points[1] + height * 0.5,
          "dominant-baseline": "central", "font-size": height * 0.6 });
        t.textContent = line.text;
        lines.append(t);
      }
      const polygon = svg("polygon", { class: "ocr-line" + (page.synthetic ? " synthetic" : ""), points: pointsAttr(line.points), "data-line": line.id,
        "stroke-width": Math.max(1, page.width / 700) });
      const tip = svg("title", {}); tip.textContent = line.text + "  (" + fmt(line.confidence, 2) + ")";
      polygon.append(tip);
      polygon.addEventListener("click", () => selectLine(doc, line));
      lines.append(polygon);
    }
    drawing.append(lines);
    // On text input the boxes are the text's rows (no picture to point into): drawn as row highlights.
    const boxes = svg("g", { class: "field-boxes" + (page.synthetic ? " synthetic" : "") });
    for (const field of doc.fields) {
      for (const box of field.boxes) {
        if (box.page !== page.index) continue;
        const polygon = svg("polygon", { class: "field-box " + field.status, points: pointsAttr(box.points),
          fill: field.color, stroke: field.color, "stroke-width": Math.max(2, page.width / 260),
          "data-field": field.name, "data-line": box.line });
        const tip = svg("title", {}); tip.textContent = field.name + ": " + (field.value || "");
        polygon.append(tip);
        polygon.addEventListener("mouseenter", () => highlight(field.name));
        polygon.addEventListener("mouseleave", () => highlight(pinned));
        polygon.addEventListener("click", (event) => { event.stopPropagation(); pin(field.name, true); selectField(doc, field); });
        boxes.append(polygon);
      }
    }
    drawing.append(boxes);
    wrap.append(drawing);
    if (doc.pages.length > 1 || doc.page) wrap.append(el("span", { class: "page-label", text: "page " + (page.index + 1) }));
    if (!page.image && !page.synthetic) wrap.append(el("span", { class: "blank-note", text: "no page image: OCR text shown" }));
    return wrap;
  }

  function fieldRow(doc, field) {
    const value = el("td", { class: "value" }, field.value === null ? "—" : field.value);
    if (field.normalized !== null && field.normalized !== field.value) value.append(el("span", { class: "normalized", text: "→ " + field.normalized }));
    if (field.problem) value.append(el("span", { class: "problem", text: field.problem }));
    const status = el("td", {}, el("span", { class: "status " + field.status, text: STATUS_TEXT[field.status] || field.status }));
    if (field.low) status.append(el("span", { class: "low", title: "confidence below " + DATA.low_confidence, text: "low confidence" }));
    const decision = field.decision
      ? el("td", { class: "decision " + field.decision, text: field.decision === "review" ? "⚑ review" : "accepted" }) : null;
    return el("tr", {
      class: "field-row " + field.status + (field.low ? " low-confidence" : "") + (field.decision ? " " + field.decision : ""),
      "data-field": field.name, "data-decision": field.decision || "",
      onmouseenter: () => highlight(field.name), onmouseleave: () => highlight(pinned),
      onclick: () => { pin(field.name, false); selectField(doc, field); },
    },
    el("td", { class: "name" }, el("span", { class: "swatch", style: "background:" + field.color }), field.name),
    value, status,
    el("td", { class: "conf", text: fmt(field.confidence, 2), title: field.calibrated ? "calibrated: the probability that the value is right" : "uncalibrated: OCR confidence x match" }),
    decision,
    el("td", { class: "match", text: field.match ? field.match + (field.match_score !== null && field.match_score < 1 ? " " + fmt(field.match_score, 2) : "") : "" }));
  }

  function kv(pairs) {
    const list = el("dl", { class: "kv" });
    for (const [key, value] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      list.append(el("dt", { text: key }), el("dd", { text: String(value) }));
    }
    return list;
  }

  function show(index) {
    if (index < 0 || index >= docs.length) return;
    current = index; pinned = null;
    const doc = docs[index];
    document.querySelectorAll("#doc-list li").forEach((li) => li.classList.toggle("current", Number(li.dataset.doc) === index));
    const item = document.querySelector('#doc-list li[data-doc="' + index + '"]');
    if (item) item.scrollIntoView({ block: "nearest" });
    if (location.hash !== "#doc-" + (index + 1)) history.replaceState(null, "", "#doc-" + (index + 1));
    const root = document.getElementById("document");
    root.replaceChildren();
    root.append(el("div", { class: "doc-head" }, el("h2", { text: docTitle(doc) }), el("span", { class: "source", text: doc.source })));
    const meta = el("div", { class: "meta" });
    const chip = (label, value) => meta.append(el("span", { class: "chip" }, el("b", { text: label + " " }), String(value)));
    chip("scenario", doc.scenario || "none");
    if (doc.route) chip("route", doc.route.mode + (doc.route.confidence !== null ? " (" + fmt(doc.route.confidence, 2) + ")" : ""));
    if (doc.usage) chip("usage", doc.usage.calls + " call(s), " + doc.usage.prompt_tokens + "+" + doc.usage.completion_tokens + " tokens");
    if (doc.timings && doc.timings.total_s !== undefined) chip("time", fmt(doc.timings.total_s, 1) + " s");
    if (doc.ocr && doc.ocr.engine) chip("ocr", doc.ocr.engine + (doc.ocr.cached ? " (cached)" : ""));
    root.append(meta);
    if (doc.error) root.append(el("div", { class: "notice bad", role: "alert" }, el("b", { text: "Failed: " }), doc.error.message || "",
      doc.error.hint ? el("span", { class: "hint", text: "hint: " + doc.error.hint }) : null));
    for (const note of doc.notes) root.append(el("div", { class: "notice info", text: note }));
    for (const warning of doc.warnings) root.append(el("div", { class: "notice warn", text: "warning: " + warning }));
    const pages = el("div", { class: "pages" });
    for (const page of doc.pages) pages.append(renderPage(doc, page));
    const side = el("div", { class: "side" });
    if (doc.fields.length) {
      const decided = doc.fields.some((f) => f.decision);
      const table = el("table", { class: "fields" }, el("thead", {}, el("tr", {},
        el("th", { text: "field" }), el("th", { text: "value" }), el("th", { text: "status" }), el("th", { text: "conf." }),
        decided ? el("th", { text: "decision" }) : null, el("th", { text: "match" }))));
      const body = el("tbody");
      for (const field of doc.fields) body.append(fieldRow(doc, field));  // the fields to review come first
      table.append(body);
      const card = el("div", { class: "card" }, el("h3", { text: "fields" }));
      if (doc.review && doc.review.summary) {
        const rule = doc.review.threshold === null ? doc.review.note
          : "accepted at " + (doc.fields.some((f) => f.calibrated) ? "calibrated" : "uncalibrated") + " confidence ≥ "
            + fmt(doc.review.threshold, 3) + " (" + doc.review.source + ")" + (doc.review.note ? "; " + doc.review.note : "");
        card.append(el("div", { class: "review-line" }, el("b", { text: doc.review.summary }), rule ? el("span", { class: "hint", text: rule }) : null));
      }
      card.append(table);
      side.append(card);
    }
    if (doc.checks && doc.checks.length) {
      const list = el("ul", { class: "checks" });
      for (const check of doc.checks) {
        const mark = check.passed === null ? "– skipped" : check.passed ? "✓ passed" : "✗ failed";
        list.append(el("li", { class: "check " + (check.passed === null ? "skipped" : check.passed ? "passed" : "failed") },
          el("b", { text: check.name + " " }), el("span", { text: mark + ": " + check.message })));
      }
      side.append(el("div", { class: "card" }, el("h3", { text: "checks" }), list));
    }
    side.append(el("div", { class: "card", id: "selection" }, el("h3", { text: "selection" }),
      el("div", { class: "empty", text: "Hover or click a field or a box." })));
    side.append(el("div", { class: "card" }, el("h3", { text: "run" }), kv([
      ["engine", doc.ocr && doc.ocr.engine ? doc.ocr.engine + (doc.ocr.model ? " · " + doc.ocr.model : "") : null],
      ["OCR lines", doc.ocr ? doc.ocr.lines : null],
      ["examples", doc.examples.length ? doc.examples.join(", ") : null],
      ["route reason", doc.route ? doc.route.reason : null],
      ["tokens", doc.usage ? doc.usage.total_tokens : null],
      ["OCR s", doc.timings ? fmt(doc.timings.ocr_s, 2) : null],
      ["LLM s", doc.timings ? fmt(doc.timings.llm_s, 2) : null],
    ])));
    root.append(el("div", { class: "columns" }, pages, side));
  }

  // -- highlighting ----------------------------------------------------------------------------

  function highlight(name) {
    document.querySelectorAll("#document svg").forEach((s) => s.classList.toggle("dim", name !== null));
    document.querySelectorAll("#document .field-box").forEach((p) => p.classList.toggle("active", p.dataset.field === name));
    document.querySelectorAll("#document tr.field-row").forEach((r) => r.classList.toggle("active", r.dataset.field === name));
  }

  function pin(name, fromBox) {
    pinned = pinned === name && !fromBox ? null : name;
    document.querySelectorAll("#document tr.field-row").forEach((r) => r.classList.toggle("pinned", r.dataset.field === pinned));
    highlight(pinned);
    const row = document.querySelector('#document tr.field-row[data-field="' + CSS.escape(name) + '"]');
    if (fromBox && row) row.scrollIntoView({ block: "nearest" });
    if (!fromBox && pinned) {
      const box = document.querySelector('#document .field-box[data-field="' + CSS.escape(name) + '"]');
      if (box) box.scrollIntoView({ block: "nearest" });
    }
  }

  function selection(...children) {
    const card = document.getElementById("selection");
    card.replaceChildren(el("h3", { text: "selection" }), ...children);
  }

  function selectField(doc, field) {
    selection(
      el("div", { class: "line-text-big" }, el("span", { class: "swatch", style: "display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:7px;background:" + field.color }), field.name),
      kv([["value", field.value === null ? "—" : field.value], ["normalized", field.normalized], ["status", STATUS_TEXT[field.status]],
        ["confidence", fmt(field.confidence, 3) + (field.calibrated ? " (calibrated)" : "") + (field.low ? " (low)" : "")],
        ["decision", field.decision], ["grounding confidence", field.calibrated ? fmt(field.grounding_confidence, 3) : null],
        ["signals used", field.signals_used.length ? field.signals_used.join(", ") : null],
        ["model's probability", field.value_probability === null ? null : fmt(field.value_probability, 3)],
        ["label", field.label], ["checks failed", field.checks_failed.length ? field.checks_failed.join(", ") : null],
        ["match", field.match], ["problem", field.problem],
        ["found on", field.boxes.map((b) => b.text).join(" | ") || null]]));
  }

  function selectLine(doc, line) {
    document.querySelectorAll("#document .ocr-line").forEach((p) => p.classList.toggle("selected", p.dataset.line === line.id));
    const uses = doc.fields.filter((f) => f.boxes.some((b) => b.line === line.id)).map((f) => f.name);
    selection(el("div", { class: "line-text-big", text: line.text }),
      kv([["line", line.id], ["confidence", fmt(line.confidence, 3)], ["fields", uses.length ? uses.join(", ") : "none"]]));
    if (uses.length) pin(uses[0], true);
  }

  // -- start -----------------------------------------------------------------------------------

  renderSummary();
  renderList();
  if (!docs.length) {
    document.getElementById("document").append(el("div", { class: "empty-report", text: "No documents in this report." }));
  } else {
    const match = /^#doc-(\d+)$/.exec(location.hash);
    show(match ? Math.min(docs.length, Math.max(1, Number(match[1]))) - 1 : 0);
  }
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement) return;
    if (event.key === "ArrowDown" || event.key === "j") { show(current + 1); event.preventDefault(); }
    if (event.key === "ArrowUp" || event.key === "k") { show(current - 1); event.preventDefault(); }
    if (event.key === "Escape") { pinned = null; highlight(null); }
  });
  document.documentElement.dataset.readyMs = String(Math.round(performance.now()));  // for bench_viewer
  document.documentElement.dataset.ready = "true";
})();
