// Small DOM helpers: elements are built with textContent, never innerHTML, so whatever a
// task, an agent or an alert calls itself is shown as text.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

export const enc = encodeURIComponent;

export function ago(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  const d = Date.now() / 1000 - seconds;
  const abs = Math.abs(d);
  const text =
    abs < 60 ? `${Math.round(abs)}s` : abs < 3600 ? `${Math.round(abs / 60)}m` :
    abs < 86400 ? `${(abs / 3600).toFixed(1)}h` : `${(abs / 86400).toFixed(1)}d`;
  return d >= 0 ? `${text} ago` : `in ${text}`;
}

export function time(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds) || seconds <= 0) return "—";
  const el = h("time", { datetime: new Date(seconds * 1000).toISOString(),
    title: new Date(seconds * 1000).toLocaleString() }, ago(seconds));
  return el;
}

export function isoSeconds(text) {
  return text ? Date.parse(text) / 1000 : null;
}

export function num(v, digits = 2) {
  if (v === null || v === undefined) return "—";
  const n = Number(v);
  if (!isFinite(n)) return String(v);
  if (Math.abs(n) >= 1e12 || (Math.abs(n) < 1e-3 && n !== 0)) return n.toExponential(2);
  return Number.isInteger(n) ? n.toLocaleString("en") : n.toLocaleString("en", { maximumFractionDigits: digits });
}

export function bytesText(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** A quantity of a resource kind: mem and disk are MB, as Mesos counts them. */
export function quantity(kind, v) {
  if (kind === "mem" || kind === "disk") return `${num(v, 0)} MB`;
  return num(v);
}

export function badge(state) {
  const s = String(state || "unknown");
  return h("span", { class: `badge s-${s.toLowerCase().replace(/^task_/, "").replace(/[^a-z_]/g, "")}` }, s.replace(/^TASK_/, ""));
}

/** A table: columns [{title, cell(row) -> node|text, class?}], rows; `empty` if none. */
export function table(columns, rows, empty = "Nothing here.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "scroll" },
    h("table", {},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.title)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(r))))))));
}

export function labels(obj, skip = []) {
  return h("span", { class: "labels" },
    Object.entries(obj || {}).filter(([k]) => !skip.includes(k)).map(([k, v]) => h("span", { class: "label" }, `${k}="${v}"`)));
}

export function card(title, ...body) {
  return h("section", { class: "card", "aria-label": title }, h("h2", {}, title), ...body);
}

export function errorBox(e) {
  return h("p", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e));
}

/** A <select> with the given options (values; "" is "all"). */
export function select(id, label, options, value, onchange) {
  return h("label", { for: id }, `${label} `,
    h("select", { id, onchange: (e) => onchange(e.target.value) },
      options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

export function search(id, label, value, oninput) {
  return h("label", { for: id }, `${label} `,
    h("input", { id, type: "search", value, oninput: (e) => oninput(e.target.value) }));
}

/** Does any of the strings contain the (case-insensitive) needle? */
export function matches(needle, ...hay) {
  if (!needle) return true;
  const n = needle.toLowerCase();
  return hay.some((s) => String(s ?? "").toLowerCase().includes(n));
}

/** The hash route's query (#/tasks?state=X) as an object, and a way to write it back. */
export function setQuery(path, params) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v));
  const text = q.toString();
  history.replaceState(null, "", `#${path}${text ? "?" + text : ""}`);
}
