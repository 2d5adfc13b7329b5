// deepcuts web page: plain JavaScript, no build step. Every value from the API is put in the
// page with textContent (never innerHTML), so names and tags cannot inject markup.
"use strict";

const state = { user: null, persona: null, personas: [], curve: null, recs: [], seq: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// The API token of a server started with --token: typed into the page, kept in this tab's
// sessionStorage (gone when the tab closes; never localStorage or a cookie) and sent as
// "Authorization: Bearer ..." with writes and admin reads only.
const TOKEN_KEY = "deepcuts-api-token";
let memoryToken = "";  // where sessionStorage is unavailable

function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return memoryToken; }
}

function setToken(value) {
  memoryToken = value.trim();
  try {
    if (memoryToken) sessionStorage.setItem(TOKEN_KEY, memoryToken);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* memory only */ }
}

function needsToken(path, method) {
  return (method !== "GET" && method !== "HEAD") || /^\/(models|retrain)(\?|$)/.test(path);
}

async function api(path, options = {}) {
  const token = getToken();
  if (token && needsToken(path, (options.method || "GET").toUpperCase())) {
    options = { ...options, headers: { ...(options.headers || {}), Authorization: `Bearer ${token}` } };
  }
  const r = await fetch(path, options);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function showError(msg) {
  const e = $("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

function fmt(n) {
  return n >= 1000 ? `${(n / 1000).toFixed(n >= 10000 ? 0 : 1)}k` : String(n);
}

// ------------------------------------------------------------------ listeners and personas
async function loadUsers(select) {
  const { users } = await api("/users?limit=300");
  const sel = $("user-select");
  sel.replaceChildren(...users.map((u) => el("option", { value: u }, u)));
  if (select && !users.includes(select)) sel.prepend(el("option", { value: select }, select));
  sel.value = select || users[0] || "";
}

async function chooseUser(user) {
  state.user = user;
  state.persona = null;
  // never show the previous listener's list or personas under the new name (issue 14)
  state.recs = [];
  state.personas = [];
  $("recs").replaceChildren();
  $("persona-tabs").replaceChildren();
  $("persona-panel").replaceChildren();
  $("recs-meta").textContent = "loading...";  // the name appears with its own list
  renderPlot();
  const sel = $("user-select");
  if (![...sel.options].some((o) => o.value === user)) sel.prepend(el("option", { value: user }, user));
  sel.value = user;
  await Promise.all([loadPersonas(), loadRecs()]);
}

async function loadPersonas() {
  const user = state.user;
  const body = await api(`/users/${encodeURIComponent(user)}/personas?n=8`);
  if (user !== state.user) return;
  state.personas = body.personas;
  renderTabs();
}

function renderTabs() {
  const tabs = $("persona-tabs");
  const many = state.personas.length > 1;
  const buttons = [];
  if (many) {
    buttons.push(el("button", { role: "tab", "data-persona": "all",
      "aria-selected": String(state.persona === null), onclick: () => selectPersona(null) },
      "All personas"));
  }
  state.personas.forEach((p) => {
    const title = p.label || `persona ${p.persona + 1}`;
    const share = many ? ` (${Math.round(p.share * 100)}%)` : "";
    buttons.push(el("button", { role: "tab", "data-persona": String(p.persona),
      "aria-selected": String(!many || state.persona === p.persona),
      onclick: () => selectPersona(many ? p.persona : null) }, title + share));
  });
  tabs.replaceChildren(...buttons);
  renderPersonaPanel();
}

function renderPersonaPanel() {
  const panel = $("persona-panel");
  const shown = state.persona === null ? state.personas : state.personas.filter((p) => p.persona === state.persona);
  panel.replaceChildren(...shown.map((p) => el("div", { class: "persona" },
    el("div", {}, el("strong", {}, p.label || `persona ${p.persona + 1}`), " ",
      ...p.tags.map((t) => el("span", { class: "chip" }, t))),
    el("div", { class: "small muted" },
      `${Math.round(p.share * 100)}% of plays \u00b7 ${p.n_artists} artists \u00b7 top artists: `,
      p.top_artists.map((a) => a.name).join(", ") || "(none)"))));
}

function selectPersona(p) {
  state.persona = p;
  renderTabs();
  loadRecs();
}

// ------------------------------------------------------------------ recommendations
function recParams() {
  const q = new URLSearchParams({ n: "12" });
  const depth = parseFloat($("depth").value);
  const diversity = parseFloat($("diversity").value);
  if (depth > 0) q.set("depth", depth.toFixed(2));
  if (diversity > 0) q.set("diversity", diversity.toFixed(2));
  if (!$("exclude-played").checked) q.set("exclude_played", "false");
  if (state.persona !== null) q.set("persona", String(state.persona));
  return q;
}

function setBusy(busy) {
  $("spinner").hidden = !busy;
  $("recs").setAttribute("aria-busy", String(busy));
}

async function loadRecs() {
  if (!state.user) return;
  const seq = ++state.seq; // only the newest request may render (slider moves fire many)
  const user = state.user;
  setBusy(true);
  try {
    const body = await api(`/users/${encodeURIComponent(user)}/recommendations?${recParams()}`);
    if (seq !== state.seq || user !== state.user) return;
    showError("");
    state.recs = body.items;
    renderRecs(body);
    renderPlot();
  } catch (e) {
    if (seq !== state.seq) return;
    // a failed request leaves no list at all rather than an older one
    state.recs = [];
    $("recs").replaceChildren();
    $("recs-meta").textContent = `for ${user}`;
    renderPlot();
    showError(e.message);
  } finally {
    if (seq === state.seq) setBusy(false);
  }
}

function renderRecs(body) {
  $("recs-meta").textContent = `for ${body.user} (model ${body.model}, ${body.source === "history" ? "folded in from stored history" : "trained user"})`;
  $("recs").replaceChildren(...body.items.map((it) => {
    const because = el("div", { class: "because", hidden: "" });
    const why = el("button", { class: "why", type: "button", onclick: () => explain(it, because) }, "why this?");
    return el("li", { "data-artist": it.artist },
      el("div", { class: "head" }, el("span", { class: "name" }, it.name), why),
      el("div", { class: "small muted" },
        `${fmt(it.listeners)} listener${it.listeners === 1 ? "" : "s"} \u00b7 popularity rank ${it.popularity_rank}` +
        (it.persona !== undefined && state.personas.length > 1 ? ` \u00b7 persona ${it.persona + 1}` : "")),
      el("div", {}, ...it.tags.map((t) => el("span", { class: "chip" }, t))),
      because);
  }));
}

async function explain(item, box) {
  box.hidden = false;
  box.textContent = "...";
  try {
    const e = await api(`/users/${encodeURIComponent(state.user)}/explanations/${encodeURIComponent(item.artist)}?n=3`);
    const names = e.because.map((b) => b.name);
    const because = names.length
      ? `Because you played ${names.join(", ")}` + (e.method === "als" ? " (largest contributions to the score)." : " (most similar artists you played).")
      : "No single artist you played stands out: it fits your taste as a whole.";
    const ev = e.evidence;
    const shared = ev.shared.map((s) => s.name);
    const evidence = ` Evidence: ${ev.listeners} listener${ev.listeners === 1 ? "" : "s"}` +
      (ev.co_listeners ? `, ${ev.co_listeners} of them also play${shared.length ? " " + shared.join(", ") : " your artists"}.` : ".");
    // the depth knob's taste evidence: how much its listeners' histories resemble yours
    const taste = typeof ev.similarity === "number" && ev.similarity > 0
      ? ` Its listeners' histories match yours ${Math.round(100 * ev.similarity)}% (taste evidence).`
      : "";
    // the content evidence: the artist's tags that your own artists carry
    const tags = Array.isArray(ev.tags) && ev.tags.length ? ` Tagged ${ev.tags.join(", ")}, like what you play.` : "";
    box.textContent = because + evidence + taste + tags;
  } catch (err) {
    box.textContent = err.message;
  }
}

// ------------------------------------------------------------------ popularity plot (SVG)
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function renderPlot() {
  const c = state.curve;
  if (!c) return;
  const W = 290, H = 170, L = 34, B = 22, T = 6, R = 6;
  const maxRank = c.n_items, maxL = Math.max(...c.listeners, 1);
  const x = (r) => L + (W - L - R) * Math.log(r) / Math.log(Math.max(maxRank, 2));
  const y = (v) => H - B - (H - B - T) * Math.log(Math.max(v, 1)) / Math.log(Math.max(maxL, 2));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": "popularity curve with the recommendations marked" });
  root.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  root.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  const d = c.ranks.map((r, i) => `${i ? "L" : "M"}${x(r).toFixed(1)},${y(c.listeners[i]).toFixed(1)}`).join("");
  root.append(svg("path", { class: "curve", d }));
  for (const it of state.recs) {
    const dot = svg("circle", { class: "rec", cx: x(it.popularity_rank).toFixed(1), cy: y(it.listeners).toFixed(1), r: 3.5 });
    const title = svg("title");
    title.textContent = `${it.name}: ${it.listeners} listeners, rank ${it.popularity_rank}`;
    dot.append(title);
    root.append(dot);
  }
  const label = (tx, ty, text, anchor = "start") => {
    const t = svg("text", { x: tx, y: ty, "text-anchor": anchor });
    t.textContent = text;
    root.append(t);
  };
  label(L, H - 6, "1");
  label(W - R, H - 6, `${fmt(maxRank)} (rank)`, "end");
  label(L - 3, T + 8, fmt(maxL), "end");
  label(L - 3, H - B, "1", "end");
  $("plot").replaceChildren(root);
}

// ------------------------------------------------------------------ upload
async function upload(ev) {
  ev.preventDefault();
  const user = $("upload-user").value.trim();
  const file = $("upload-file").files[0];
  if (!user || !file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("format", $("upload-format").value);
  form.append("mode", $("upload-mode").value);
  $("upload-status").textContent = "uploading...";
  try {
    const r = await api(`/users/${encodeURIComponent(user)}/history`, { method: "POST", body: form });
    $("upload-status").textContent = `stored ${r.listens} listens of ${r.artists} artists (${r.known_artists} known to the model)`;
    await loadUsers(user);
    await chooseUser(user);
  } catch (e) {
    $("upload-status").textContent = e.message;
  }
}

// ------------------------------------------------------------------ start
function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

async function start() {
  const refresh = debounce(loadRecs, 60);
  $("depth").addEventListener("input", () => { $("depth-value").textContent = parseFloat($("depth").value).toFixed(2); refresh(); });
  $("diversity").addEventListener("input", () => { $("diversity-value").textContent = parseFloat($("diversity").value).toFixed(2); refresh(); });
  $("exclude-played").addEventListener("change", refresh);
  $("user-select").addEventListener("change", (e) => chooseUser(e.target.value).catch((err) => showError(err.message)));
  $("upload-form").addEventListener("submit", upload);
  $("api-token").value = getToken();
  $("api-token").addEventListener("input", (e) => setToken(e.target.value));
  $("user-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const user = $("user-id").value.trim();
    if (user) chooseUser(user).catch((err) => showError(err.message));
  });
  try {
    const h = await api("/health");
    const m = h.model;
    $("model-info").textContent = m ? `model ${m.id}: ${m.class}, ${fmt(m.n_users)} listeners x ${fmt(m.n_items)} artists` : "no model yet";
    state.curve = await api("/popularity");
    await loadUsers();
    if ($("user-select").value) await chooseUser($("user-select").value);
  } catch (e) {
    showError(e.message);
  }
  document.body.dataset.ready = "true";
}

start();
