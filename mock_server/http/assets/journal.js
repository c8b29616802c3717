// The journal page of aimlapi-mock: plain JavaScript, no build step, no third-party code.
// Every request goes to this origin, with the admin token (from the page's #token=...) as a
// bearer header; the live stream is read with fetch() so that it can carry the header too.
"use strict";

(() => {
  const MAX_KEPT = 5000;      // entries held in memory (oldest dropped first)
  const PAGE_ROWS = 200;      // rows in the DOM until "show more" is pressed
  const KNOWN = new Set(["method", "path", "query", "time", "headers", "body", "model",
    "is_generation", "status", "request_id", "violations", "image_urls", "fault", "error",
    "duration", "response_body", "received_at"]);

  // The page downloads thumbnails like any client, so they reach the journal too: marked, so that
  // the page can leave them out and a reader of the journal can tell them apart.
  const OWN_DOWNLOAD = "via=journal-page";

  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const state = { all: [], seq: 0, limit: PAGE_ROWS, open: new Set(), models: new Set(),
    pending: [], frame: 0, dropped: 0 };

  // Admin API ---------------------------------------------------------------------------------

  function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    if (token) headers.set("Authorization", "Bearer " + token);
    return fetch(path, { ...options, headers, cache: "no-store", credentials: "same-origin" });
  }

  async function send(method, path, value) {
    const options = { method };
    if (value !== undefined) {
      options.body = JSON.stringify(value);
      options.headers = { "Content-Type": "application/json" };
    }
    const response = await api(path, options);
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try { message = (await response.json()).message || message; } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    return response.status === 204 ? null : response.json();
  }

  function say(text, bad = false) {
    const box = $("message");
    box.textContent = text;
    box.classList.toggle("bad", bad);
  }

  // The live stream ---------------------------------------------------------------------------

  async function listen() {
    let wait = 500;
    for (;;) {
      try {
        const response = await api("events");
        if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
        setLive("live");
        wait = 500;
        await readEvents(response.body.getReader());
      } catch (_) { /* reconnect below */ }
      setLive("error");
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 5000);
    }
  }

  async function readEvents(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent(name, data.join("\n"));
      }
    }
  }

  function onEvent(name, data) {
    if (name === "reset") {
      state.all = [];
      state.pending = [];
      state.open.clear();
      add(JSON.parse(data), false);
      renderAll();
    } else if (name === "entries") {
      add(JSON.parse(data), true);
    } else if (name === "dropped") {
      state.dropped += Number(data);
      say(`${state.dropped} requests arrived faster than this page could be sent them; reload to see them.`);
    }
  }

  function setLive(value) {
    const live = $("live");
    live.dataset.state = value;
    live.querySelector("span").textContent = value === "live" ? "live" : "reconnecting";
  }

  // Entries ---------------------------------------------------------------------------------

  function add(entries, fresh) {
    let faulted = false;
    entries = entries.filter((entry) => entry.query !== OWN_DOWNLOAD);
    for (const entry of entries) {
      entry._n = ++state.seq;
      state.all.push(entry);
      if (entry.model && !state.models.has(entry.model)) addModel(entry.model);
      if (entry.fault) faulted = true;
    }
    if (state.all.length > MAX_KEPT) state.all.splice(0, state.all.length - MAX_KEPT);
    if (fresh) {
      state.pending.push(...entries);
      if (!state.frame) state.frame = requestAnimationFrame(flush);
      if (faulted) refreshFaultsSoon();
    }
  }

  function addModel(model) {
    state.models.add(model);
    const select = $("filter-model");
    const option = new Option(model, model);
    const after = [...select.options].slice(1).find((o) => o.value > model);
    select.add(option, after || null);
  }

  function matches(entry) {
    const model = $("filter-model").value;
    const status = $("filter-status").value;
    if (model && entry.model !== model) return false;
    if ($("filter-generations").checked && !entry.is_generation) return false;
    const code = entry.status;
    switch (status) {
      case "": return true;
      case "fault": return Boolean(entry.fault);
      case "closed": return code === null;
      case "error": return code === null || code >= 400;
      default: return code !== null && String(code)[0] === status;
    }
  }

  // New entries arrive in batches; they are drawn once per animation frame, newest on top.
  function flush() {
    state.frame = 0;
    const batch = state.pending.filter(matches);
    state.pending = [];
    if (batch.length) {
      const body = $("rows");
      const fragment = document.createDocumentFragment();
      const shown = batch.slice(-state.limit);
      for (let i = shown.length - 1; i >= 0; i--) fragment.append(row(shown[i], true));
      body.prepend(fragment);
      trimRows();
    }
    updateCounts();
  }

  function renderAll() {
    const body = $("rows");
    const fragment = document.createDocumentFragment();
    const visible = visibleEntries();
    for (const entry of visible.slice(0, state.limit)) {
      fragment.append(row(entry, false));
      if (state.open.has(entry._n)) fragment.append(detailRow(entry));
    }
    body.replaceChildren(fragment);
    updateCounts();
  }

  function visibleEntries() {
    const visible = [];
    for (let i = state.all.length - 1; i >= 0; i--) {
      if (matches(state.all[i])) visible.push(state.all[i]);
    }
    return visible;
  }

  function trimRows() {
    const body = $("rows");
    let count = body.querySelectorAll("tr.entry").length;
    while (count > state.limit) {
      const last = body.lastElementChild;
      if (last.classList.contains("entry")) count--;
      last.remove();
    }
  }

  function updateCounts() {
    const visible = state.all.filter(matches);
    const shown = Math.min(visible.length, state.limit);
    $("empty").hidden = state.all.length > 0;
    const more = $("more");
    more.hidden = visible.length <= shown;
    $("show-more").textContent = `Show ${Math.min(PAGE_ROWS, visible.length - shown)} more of ${visible.length - shown}`;
    let errors = 0, faults = 0, credits = 0;
    for (const entry of state.all) {
      if (entry.status === null || entry.status >= 400) errors++;
      if (entry.fault) faults++;
      credits += creditsOf(entry) || 0;
    }
    const summary = $("summary");
    summary.replaceChildren(
      bold(state.all.length.toLocaleString("en")), plural(state.all.length, " request") + " · ", bold(errors.toLocaleString("en")),
      plural(errors, " error") + " · ", bold(faults), plural(faults, " fault") + " · ", bold(credits.toLocaleString("en")), " credits",
      visible.length !== state.all.length ? ` · ${visible.length} match the filters` : "");
  }

  function plural(count, word) {
    return count === 1 ? word : word + "s";
  }

  function bold(value) {
    const b = document.createElement("b");
    b.textContent = String(value);
    return b;
  }

  // Rows ------------------------------------------------------------------------------------

  function cell(className, content, title) {
    const td = document.createElement("td");
    td.className = className;
    if (content instanceof Node) td.append(content);
    else td.textContent = content == null ? "" : String(content);
    if (title) td.title = title;
    return td;
  }

  function span(className, text) {
    const s = document.createElement("span");
    s.className = className;
    s.textContent = text;
    return s;
  }

  function row(entry, fresh) {
    const tr = document.createElement("tr");
    tr.className = "entry" + (fresh ? " fresh" : "") + (state.open.has(entry._n) ? " open" : "");
    tr.dataset.n = entry._n;
    tr.tabIndex = 0;
    const code = entry.status;
    const statusClass = code === null ? "sx" : "s" + String(code)[0];
    const credits = creditsOf(entry);
    const violations = (entry.violations || []).length;
    const url = entry.path + (entry.query ? "?" + entry.query : "");
    tr.append(
      cell("c-time", clock(entry.time), entry.time),
      cell("c-method", entry.method),
      cell("c-path", url, url),
      cell("c-model", entry.model || span("muted", "—"), entry.model || ""),
      cell("c-status", span("status " + statusClass, code === null ? "closed" : code)),
      cell("c-num", duration(entry.duration)),
      cell("c-num", credits == null ? "" : credits.toLocaleString("en")),
      cell("c-fault", entry.fault ? span("tag", entry.fault) : "", entry.fault || ""),
      cell("c-num", violations ? span("count", violations) : ""),
      cell("c-id", (entry.request_id || "").slice(0, 8), entry.request_id || ""),
    );
    return tr;
  }

  function toggle(tr) {
    const n = Number(tr.dataset.n);
    const next = tr.nextElementSibling;
    if (state.open.has(n)) {
      state.open.delete(n);
      tr.classList.remove("open");
      if (next && next.classList.contains("detail-row")) next.remove();
      return;
    }
    const entry = state.all.find((e) => e._n === n);
    if (!entry) return;
    state.open.add(n);
    tr.classList.add("open");
    tr.after(detailRow(entry));
  }

  function detailRow(entry) {
    const tr = document.createElement("tr");
    tr.className = "detail-row";
    const td = document.createElement("td");
    td.colSpan = 10;
    const detail = $("detail-template").content.firstElementChild.cloneNode(true);
    detail.querySelector('[data-copy="curl"]').addEventListener("click",
      () => copy(asCurl(entry), "curl command"));
    const assertButton = detail.querySelector('[data-copy="assert"]');
    if (entry.body && typeof entry.body === "object" && !Array.isArray(entry.body)) {
      assertButton.addEventListener("click", () => copy(asAssert(entry), "assertion"));
    } else {
      assertButton.disabled = true;
    }
    const facts = detail.querySelector(".facts");
    fact(facts, "time", entry.time);
    if (entry.request_id) fact(facts, "request id", entry.request_id);
    if (entry.fault) fact(facts, "fault", entry.fault);
    if (entry.error) fact(facts, "error", entry.error);
    for (const [name, value] of Object.entries(entry)) {
      if (!KNOWN.has(name) && !name.startsWith("_")) fact(facts, name, jsonText(value, 0));
    }
    const headers = detail.querySelector(".header-list");
    for (const [name, value] of Object.entries(entry.headers || {})) fact(headers, name, value);
    detail.querySelector(".request-body").textContent =
      entry.body === null ? "(no body)" : jsonText(entry.body, 2);
    detail.querySelector(".answer").textContent = entry.response_body == null
      ? (entry.status === null ? "(connection closed, no answer)" : "(not JSON: an image or empty)")
      : jsonText(entry.response_body, 2);
    const violations = entry.violations || [];
    if (violations.length) {
      const pane = detail.querySelector(".violations-pane");
      pane.hidden = false;
      const body = pane.querySelector("tbody");
      for (const v of violations) {
        const line = document.createElement("tr");
        line.append(cell("", v.field || (v.path || []).join(".") || "body"), cell("", v.code),
          cell("", v.message));
        body.append(line);
      }
    }
    const urls = (entry.image_urls || []).map(ownUrl).filter(Boolean);
    if (urls.length) {
      const images = detail.querySelector(".images");
      images.hidden = false;
      urls.forEach((url, i) => images.append(thumbnail(url, i)));
    }
    td.append(detail);
    tr.append(td);
    return tr;
  }

  function fact(list, name, value) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value == null ? "" : String(value);
    list.append(dt, dd);
  }

  // An image URL the fake issued, as a path on this origin (the page may be reached by another
  // name than the one the client used); anything else is not shown.
  function ownUrl(text) {
    try {
      const url = new URL(text, location.href);
      if (!/^https?:$/.test(url.protocol)) return null;
      return url.pathname.startsWith("/files/") ? url.pathname + "?" + OWN_DOWNLOAD : null;
    } catch (_) {
      return null;
    }
  }

  function thumbnail(url, index) {
    const figure = document.createElement("figure");
    figure.style.margin = "0";
    const link = document.createElement("a");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener";
    const img = document.createElement("img");
    img.loading = "lazy";
    img.decoding = "async";
    img.alt = "image " + (index + 1);
    img.src = url;
    const caption = document.createElement("figcaption");
    caption.textContent = "image " + (index + 1);
    img.addEventListener("load", () => {
      const format = url.split("?")[0].split(".").pop();
      caption.textContent = `#${index + 1} · ${img.naturalWidth}×${img.naturalHeight} · ${format}`;
    });
    img.addEventListener("error", () => { caption.textContent = `#${index + 1} · not served`; });
    link.append(img);
    figure.append(link, caption);
    return figure;
  }

  // Formatting ------------------------------------------------------------------------------

  function creditsOf(entry) {
    const usage = entry.response_body && entry.response_body.meta && entry.response_body.meta.usage;
    const used = usage && usage.credits_used;
    return typeof used === "number" ? used : null;
  }

  function clock(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}.${pad(when.getMilliseconds(), 3)}`;
  }

  function duration(seconds) {
    if (typeof seconds !== "number") return "";
    const ms = seconds * 1000;
    if (ms < 10) return ms.toFixed(1) + " ms";
    if (ms < 1000) return Math.round(ms) + " ms";
    return seconds.toFixed(2) + " s";
  }

  function jsonText(value, indent) {
    return typeof value === "string" ? value : JSON.stringify(value, null, indent);
  }

  function shellQuote(text) {
    return "'" + String(text).replace(/'/g, "'\\''") + "'";
  }

  function asCurl(entry) {
    const url = location.origin + entry.path + (entry.query ? "?" + entry.query : "");
    const lines = ["curl -s " + shellQuote(url)];
    const hasBody = entry.body !== null && entry.body !== undefined;
    if (entry.method !== "GET" && !(entry.method === "POST" && hasBody)) {
      lines.push("-X " + entry.method);
    }
    for (const [name, value] of Object.entries(entry.headers || {})) {
      if (name === "authorization") lines.push('-H "Authorization: Bearer $AIMLAPI_KEY"');
      else if (name === "content-type" || name === "prefer" || name.startsWith("x-")) {
        lines.push("-H " + shellQuote(headerName(name) + ": " + value));
      }
    }
    if (hasBody) lines.push("--data-raw " + shellQuote(jsonText(entry.body, 0)));
    return lines.join(" \\\n  ");
  }

  function headerName(name) {
    return name.replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase());
  }

  const PY_KEYWORDS = new Set(("False None True and as assert async await break class continue " +
    "def del elif else except finally for from global if import in is lambda nonlocal not or " +
    "pass raise return try while with yield").split(" "));

  function py(value) {
    if (value === null || value === undefined) return "None";
    if (value === true) return "True";
    if (value === false) return "False";
    if (typeof value === "number") return Number.isFinite(value) ? String(value) : "None";
    if (typeof value === "string") return JSON.stringify(value);
    if (Array.isArray(value)) return "[" + value.map(py).join(", ") + "]";
    return "{" + Object.entries(value).map(([k, v]) => JSON.stringify(k) + ": " + py(v)).join(", ") + "}";
  }

  function asAssert(entry) {
    const named = [], other = [];
    for (const [name, value] of Object.entries(entry.body)) {
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !PY_KEYWORDS.has(name)) {
        named.push(`${name}=${py(value)}`);
      } else {
        other.push(`${JSON.stringify(name)}: ${py(value)}`);
      }
    }
    if (other.length) named.push("**{" + other.join(", ") + "}");
    return "aimlapi_mock.journal.assert_called_with(\n    " + named.join(",\n    ") + ",\n)";
  }

  async function copy(text, what) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    document.body.dataset.copied = text;  // what was copied last (read by the browser test)
    say(`Copied the ${what}.`);
  }

  // Toolbar ---------------------------------------------------------------------------------

  function exportLines() {
    const lines = visibleEntries().reverse().map((entry) => {
      const plain = { ...entry };
      delete plain._n;
      return JSON.stringify(plain);
    });
    const blob = new Blob([lines.join("\n") + (lines.length ? "\n" : "")],
      { type: "application/x-ndjson" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "aimlapi-mock-journal-" + new Date().toISOString().replace(/[:.]/g, "-") + ".jsonl";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    say(`Exported ${lines.length} requests.`);
  }

  async function clearJournal() {
    try {
      await send("DELETE", "requests");
      state.all = [];
      state.open.clear();
      renderAll();
      say("Journal cleared.");
    } catch (error) {
      say("Could not clear the journal: " + error.message, true);
    }
  }

  // Controls --------------------------------------------------------------------------------

  async function refreshFaults() {
    try {
      const plan = await send("GET", "faults");
      const list = $("fault-list");
      list.replaceChildren(...(plan.faults || []).map((rule) => {
        const li = document.createElement("li");
        li.textContent = rule;
        return li;
      }));
      $("latency-now").textContent = plan.latency || "none";
    } catch (error) {
      say("Could not read the faults: " + error.message, true);
    }
  }

  let faultTimer = 0;
  function refreshFaultsSoon() {
    clearTimeout(faultTimer);
    faultTimer = setTimeout(refreshFaults, 300);
  }

  async function refreshCredits() {
    try {
      const response = await api("credits");
      document.body.dataset.ledger = response.status === 404 ? "none" : "present";
      if (response.status === 404) return;
      $("credits-panel").hidden = false;
      if (!response.ok) return;
      const { credits } = await response.json();
      $("credits-now").textContent =
        credits == null ? "unlimited" : Number(credits).toLocaleString("en") + " credits";
    } catch (_) { /* no ledger */ }
  }

  function control(formId, action) {
    $(formId).addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        say(await action());
      } catch (error) {
        say(error.message, true);
      }
    });
  }

  control("fault-form", async () => {
    const input = $("fault-rule");
    const added = await send("POST", "faults", input.value.trim());
    input.value = "";
    await refreshFaults();
    return "Added " + added.fault + ".";
  });
  control("latency-form", async () => {
    const value = $("latency-value").value.trim();
    const set = await send("PUT", "latency", value || null);
    await refreshFaults();
    return "Latency: " + (set.latency || "none") + ".";
  });
  control("credits-form", async () => {
    const text = $("credits-value").value.trim();
    const number = Number(text);
    await send("PUT", "credits", text !== "" && Number.isFinite(number) ? number : text);
    await refreshCredits();
    return "Credits set.";
  });
  $("fault-clear").addEventListener("click", async () => {
    try {
      await send("DELETE", "faults");
      await refreshFaults();
      say("Every fault rule removed.");
    } catch (error) { say(error.message, true); }
  });
  $("latency-clear").addEventListener("click", async () => {
    try {
      await send("DELETE", "latency");
      await refreshFaults();
      say("No latency.");
    } catch (error) { say(error.message, true); }
  });

  // Start -----------------------------------------------------------------------------------

  $("rows").addEventListener("click", (event) => {
    const tr = event.target.closest("tr.entry");
    if (tr) toggle(tr);
  });
  $("rows").addEventListener("keydown", (event) => {
    const tr = event.target.closest("tr.entry");
    if (tr && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      toggle(tr);
    }
  });
  for (const id of ["filter-model", "filter-status", "filter-generations"]) {
    $(id).addEventListener("change", () => { state.limit = PAGE_ROWS; renderAll(); });
  }
  $("show-more").addEventListener("click", () => { state.limit += PAGE_ROWS; renderAll(); });
  $("export").addEventListener("click", exportLines);
  $("clear").addEventListener("click", clearJournal);
  $("api-url").textContent = location.origin + "/v1/images/generations";

  api("health").then((r) => r.json()).then((health) => {
    for (const model of health.models || []) if (!state.models.has(model)) addModel(model);
    document.title = `aimlapi-mock ${health.version} · journal`;
  }).catch(() => { /* the stream shows the connection state */ });
  refreshFaults();
  refreshCredits();
  updateCounts();
  listen();
})();
