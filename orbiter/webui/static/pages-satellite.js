// Satellite's pages: alerts, rules, targets, decisions, silences and the PromQL graph.
import * as api from "./api.js";
import { COLORS, lineChart } from "./graph.js";
import { gather } from "./pages-cluster.js";
import {
  badge, card, enc, errorBox, h, isoSeconds, labels, link, matches, num, replace, search,
  select, setQuery, table, time,
} from "./ui.js";

function off(e) {
  return h("p", { class: e.status === 404 ? "muted" : "error" },
    e.status === 404 ? "Satellite is off on this master (started with --no-satellite)." : e.message);
}

// ------------------------------------------------------------------- silences matching

/** Does a silence matcher {name, value, isRegex, isEqual} match these labels? */
export function matcherMatches(m, lbls) {
  const v = lbls[m.name] ?? "";
  let hit;
  if (m.isRegex) {
    try { hit = new RegExp(`^(?:${m.value})$`).test(v); } catch { hit = false; }
  } else hit = v === m.value;
  return (m.isEqual ?? true) ? hit : !hit;
}

export function silencedBy(silences, lbls) {
  return silences.filter((s) => s.status.state === "active" && s.matchers.every((m) => matcherMatches(m, lbls)));
}

// ------------------------------------------------------------------- alerts

export function alerts(root, query) {
  const f = { state: query.get("state") || "", search: query.get("search") || "" };
  const list = h("div", {});
  let last = null;
  const render = () => {
    setQuery("/alerts", f);
    if (!last) return;
    if (last.alerts instanceof Error) { replace(list, off(last.alerts)); return; }
    const silences = last.silences instanceof Error ? [] : last.silences;
    const rows = last.alerts.data.alerts.map((a) => {
      const by = silencedBy(silences, a.labels);
      return { ...a, silences: by, shown: by.length ? "silenced" : a.state };
    }).filter((a) => (!f.state || a.shown === f.state) &&
      matches(f.search, ...Object.entries(a.labels).map(([k, v]) => `${k}=${v}`), ...Object.values(a.annotations || {})));
    rows.sort((a, b) => (a.labels.alertname || "").localeCompare(b.labels.alertname || ""));
    replace(list, table([
      { title: "Alert", cell: (a) => h("strong", {}, a.labels.alertname || "?") },
      { title: "State", cell: (a) => [badge(a.state), a.silences.length ? [" ", badge("silenced")] : null] },
      { title: "Labels", cell: (a) => labels(a.labels, ["alertname"]) },
      { title: "Annotations", cell: (a) => h("dl", { class: "annotations" },
        Object.entries(a.annotations || {}).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])) },
      { title: "Active since", cell: (a) => time(isoSeconds(a.activeAt)) },
      { title: "Value", cell: (a) => num(a.value), class: "n" },
      { title: "", cell: (a) => a.silences.length
        ? a.silences.map((s) => link(`#/silences?search=${enc(s.id)}`, `silence ${s.id.slice(0, 8)}`))
        : link(`#/silences?new=${enc(Object.entries(a.labels).filter(([k]) => k === "alertname" || k === "agent").map(([k, v]) => `${k}="${v}"`).join(", "))}`, "Silence…") },
    ], rows, "No alert matches."));
  };
  replace(root, h("h1", {}, "Alerts"),
    h("div", { class: "filters" },
      select("alert-state", "State", [["", "all"], ["firing", "firing"], ["pending", "pending"], ["silenced", "silenced"]], f.state, (v) => { f.state = v; render(); }),
      search("alert-search", "Search", f.search, (v) => { f.search = v; render(); })),
    list);
  return {
    async refresh() {
      const { data, changed } = await gather({ alerts: "/api/v1/alerts", silences: "/api/v2/silences" });
      if (!changed && last) return;
      last = data;
      render();
    },
  };
}

// ------------------------------------------------------------------- rules

export function rules(root) {
  const list = h("div", {});
  const result = h("div", { role: "status" });
  const reload = async () => {
    try {
      const r = await api.send("POST", "/api/v1/rules/reload");
      replace(result, h("p", { class: "ok" }, `Reloaded: ${r.groups} groups, ${r.rules} rules.`));
    } catch (e) {
      replace(result, errorBox(e));
    }
  };
  let drawn = false;
  replace(root, h("h1", {}, "Rules"), h("p", {}, h("button", { type: "button", onclick: reload }, "Reload rule files")), result, list);
  return {
    async refresh() {
      let r;
      try { r = await api.get("/api/v1/rules"); } catch (e) { replace(list, off(e)); return; }
      if (!r.changed && drawn) return;
      drawn = true;
      replace(list, r.data.data.groups.map((g) => card(`${g.name}`,
        h("p", { class: "muted" }, `${g.file} · every ${g.interval}s · last evaluated `, time(isoSeconds(g.lastEvaluation)),
          ` in ${num(g.evaluationTime * 1000)} ms`),
        table([
          { title: "Rule", cell: (x) => h("strong", {}, x.name) },
          { title: "Type", cell: (x) => x.type },
          { title: "State", cell: (x) => (x.type === "alerting" ? badge(x.state) : "—") },
          { title: "Health", cell: (x) => [badge(x.health), x.lastError ? h("span", { class: "error" }, ` ${x.lastError}`) : null] },
          { title: "Expression", cell: (x) => link(`#/query?expr=${enc(x.query)}`, h("code", {}, x.query)) },
          { title: "For", cell: (x) => (x.duration ? `${x.duration}s` : "—"), class: "n" },
          { title: "Alerts", cell: (x) => (x.alerts ? num(x.alerts.length) : "—"), class: "n" },
          { title: "Last evaluation", cell: (x) => time(isoSeconds(x.lastEvaluation)) },
          { title: "Took", cell: (x) => `${num(x.evaluationTime * 1000, 3)} ms`, class: "n" },
        ], g.rules, "No rules in this group."))));
      if (!r.data.data.groups.length) replace(list, h("p", { class: "empty" }, "No rule files loaded."));
    },
  };
}

// ------------------------------------------------------------------- targets

export function targets(root, query) {
  const f = { health: query.get("health") || "", search: query.get("search") || "" };
  const list = h("div", {});
  let last = null;
  const health = (t) => (t.up === null ? "unknown" : t.up ? "up" : "down");
  const render = () => {
    setQuery("/targets", f);
    if (!last) return;
    const rows = last.targets.filter((t) => (!f.health || health(t) === f.health) &&
      matches(f.search, t.url, ...Object.values(t.labels), t.last_error));
    replace(list, table([
      { title: "Target", cell: (t) => t.url },
      { title: "Health", cell: (t) => badge(health(t)) },
      { title: "Labels", cell: (t) => labels(t.labels) },
      { title: "Last scrape", cell: (t) => time(t.last_scrape) },
      { title: "Took", cell: (t) => `${num(t.last_duration_seconds * 1000)} ms`, class: "n" },
      { title: "Samples", cell: (t) => num(t.samples), class: "n" },
      { title: "Error", cell: (t) => (t.last_error ? h("span", { class: "error" }, t.last_error) : "") },
    ], rows, "No target matches."));
  };
  replace(root, h("h1", {}, "Targets"),
    h("div", { class: "filters" },
      select("target-health", "Health", [["", "all"], ["up", "up"], ["down", "down"], ["unknown", "not scraped yet"]], f.health, (v) => { f.health = v; render(); }),
      search("target-search", "Search", f.search, (v) => { f.search = v; render(); })),
    list);
  return {
    async refresh() {
      let r;
      try { r = await api.get("/api/v1/satellite/targets"); } catch (e) { replace(list, off(e)); return; }
      if (!r.changed && last) return;
      last = r.data;
      render();
    },
  };
}

// ------------------------------------------------------------------- decisions

export function decisions(root, query) {
  const f = { outcome: query.get("outcome") || "", action: query.get("action") || "", search: query.get("search") || "" };
  const list = h("div", {});
  let last = null;
  const render = () => {
    setQuery("/decisions", f);
    if (!last) return;
    const rows = last.events.filter((e) => (!f.outcome || e.outcome === f.outcome) && (!f.action || e.action === f.action) &&
      matches(f.search, e.agent, e.rule, e.reason)).reverse();
    replace(list, table([
      { title: "When", cell: (e) => time(e.time) },
      { title: "Outcome", cell: (e) => badge(e.outcome) },
      { title: "Action", cell: (e) => e.action },
      { title: "Agent", cell: (e) => link(`#/agents/${enc(e.agent)}`, e.agent) },
      { title: "Rule", cell: (e) => e.rule },
      { title: "Reason", cell: (e) => e.reason },
    ], rows, "No decision matches."));
  };
  replace(root, h("h1", {}, "Satellite's decisions"),
    h("div", { class: "filters" },
      select("decision-outcome", "Outcome", [["", "all"], ["taken", "taken"], ["refused", "refused"], ["dry_run", "dry run"]], f.outcome, (v) => { f.outcome = v; render(); }),
      select("decision-action", "Action", [["", "all"], ["deactivate", "deactivate"], ["drain", "drain"], ["reactivate", "reactivate"]], f.action, (v) => { f.action = v; render(); }),
      search("decision-search", "Search", f.search, (v) => { f.search = v; render(); })),
    list);
  return {
    async refresh() {
      let r;
      try { r = await api.get("/api/v1/satellite/events?limit=1000"); } catch (e) { replace(list, off(e)); return; }
      if (!r.changed && last) return;
      last = r.data;
      render();
    },
  };
}

// ------------------------------------------------------------------- silences

/** `alertname="X", agent=~"a.*"` -> Alertmanager matchers; throws on what is not one. */
export function parseMatchers(text) {
  const out = [];
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)/y;
  let pos = 0;
  const s = text.trim();
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) throw new Error(`cannot read a matcher at “${s.slice(pos)}”: write name="value", name=~"regex", name!="value"`);
    const value = m[3] !== undefined ? m[3].replace(/\\(.)/g, "$1") : m[4];
    out.push({ name: m[1], value, isRegex: m[2].includes("~"), isEqual: !m[2].startsWith("!") });
    pos = re.lastIndex;
  }
  if (!out.length) throw new Error("give at least one matcher, e.g. alertname=\"OrbiterAgentDown\"");
  return out;
}

function matcherText(m) {
  return `${m.name}${m.isEqual === false ? "!" : "="}${m.isRegex ? "~" : ""}"${m.value}"`;
}

export function silences(root, query) {
  const f = { state: query.get("state") || "active", search: query.get("search") || "" };
  const list = h("div", {});
  const result = h("div", { role: "status", "aria-live": "polite" });
  const matchersIn = h("input", { id: "silence-matchers", type: "text", value: query.get("new") || "", placeholder: 'alertname="OrbiterAgentDown", agent=~"S1|S2"' });
  const hours = h("input", { id: "silence-hours", type: "number", min: 0.01, step: "any", value: "2" });
  const who = h("input", { id: "silence-by", type: "text", value: localStorage.getItem("orbiter.user") || "" });
  const comment = h("input", { id: "silence-comment", type: "text" });
  let last = null;
  const add = async (ev) => {
    ev.preventDefault();
    try {
      const matchers = parseMatchers(matchersIn.value);
      if (!who.value.trim() || !comment.value.trim()) throw new Error("say who you are and why (createdBy and comment)");
      localStorage.setItem("orbiter.user", who.value.trim());
      const ends = new Date(Date.now() + Number(hours.value) * 3600e3).toISOString();
      const r = await api.send("POST", "/api/v2/silences", { matchers, endsAt: ends, createdBy: who.value.trim(), comment: comment.value.trim() });
      replace(result, h("p", { class: "ok" }, `Silence ${r.silenceID} added.`));
      comment.value = "";
      page.refresh();
    } catch (e) {
      replace(result, errorBox(e));
    }
  };
  const expire = async (s) => {
    try {
      await api.send("DELETE", `/api/v2/silence/${enc(s.id)}`);
      replace(result, h("p", { class: "ok" }, `Silence ${s.id} expired.`));
      page.refresh();
    } catch (e) {
      replace(result, errorBox(e));
    }
  };
  const render = () => {
    setQuery("/silences", f);
    if (!last) return;
    const rows = last.filter((s) => (!f.state || s.status.state === f.state) &&
      matches(f.search, s.id, s.createdBy, s.comment, ...s.matchers.map(matcherText)));
    replace(list, table([
      { title: "Matchers", cell: (s) => h("span", { class: "labels" }, s.matchers.map((m) => h("span", { class: "label" }, matcherText(m)))) },
      { title: "State", cell: (s) => badge(s.status.state) },
      { title: "Starts", cell: (s) => time(isoSeconds(s.startsAt)) },
      { title: "Ends", cell: (s) => time(isoSeconds(s.endsAt)) },
      { title: "By", cell: (s) => s.createdBy },
      { title: "Comment", cell: (s) => s.comment },
      { title: "Id", cell: (s) => h("code", {}, s.id) },
      { title: "", cell: (s) => (s.status.state === "expired" ? "" : h("button", { type: "button", onclick: () => expire(s), "aria-label": `Expire silence ${s.id}` }, "Expire")) },
    ], rows, "No silence matches."));
  };
  replace(root, h("h1", {}, "Silences"),
    h("form", { class: "card", onsubmit: add, "aria-label": "New silence" }, h("h2", {}, "New silence"),
      h("div", { class: "form-row" }, h("label", { for: "silence-matchers" }, "Matchers"), matchersIn),
      h("div", { class: "form-row" }, h("label", { for: "silence-hours" }, "For hours"), hours,
        h("label", { for: "silence-by" }, "Created by"), who),
      h("div", { class: "form-row" }, h("label", { for: "silence-comment" }, "Comment"), comment),
      h("button", { type: "submit" }, "Add silence"), result),
    h("div", { class: "filters" },
      select("silence-state", "State", [["", "all"], ["active", "active"], ["pending", "pending"], ["expired", "expired"]], f.state, (v) => { f.state = v; render(); }),
      search("silence-search", "Search", f.search, (v) => { f.search = v; render(); })),
    list);
  const page = {
    async refresh() {
      const r = await api.get("/api/v2/silences");
      if (!r.changed && last) return;
      last = r.data;
      render();
    },
  };
  return page;
}

// ------------------------------------------------------------------- query

const RANGES = [["5m", 300], ["15m", 900], ["1h", 3600], ["6h", 21600], ["1d", 86400]];

function seriesName(metric) {
  const { __name__: name = "", ...rest } = metric;
  const inner = Object.entries(rest).map(([k, v]) => `${k}="${v}"`).join(", ");
  return inner || !name ? `${name}{${inner}}` : name;
}

export function query(root, q) {
  const f = { expr: q.get("expr") || "", range: q.get("range") || "15m" };
  const expr = h("textarea", { id: "query-expr", rows: 2, spellcheck: "false", placeholder: "e.g. rate(orbiter_host_cpu_seconds_total[1m])" });
  expr.value = f.expr;
  const graph = h("div", { class: "graph", id: "graph" });
  const legend = h("ul", { class: "legend" });
  const values = h("div", {});
  const status = h("div", { role: "status", "aria-live": "polite" });
  // The poll runs what was last submitted, not what is being typed.
  const run = async () => {
    setQuery("/query", f);
    if (!f.expr) { replace(graph); replace(legend); replace(values); replace(status); return; }
    const span = Object.fromEntries(RANGES)[f.range] || 900;
    const end = Date.now() / 1000;
    const start = end - span;
    const step = Math.max(1, Math.ceil(span / 240));
    try {
      const [range, instant] = await Promise.all([
        api.prom(`/api/v1/query_range?query=${enc(f.expr)}&start=${start.toFixed(3)}&end=${end.toFixed(3)}&step=${step}`),
        api.prom(`/api/v1/query?query=${enc(f.expr)}`),
      ]);
      const series = range.result.map((s) => ({ name: seriesName(s.metric), points: s.values.map(([t, v]) => [t, Number(v)]) }));
      replace(graph, lineChart(series, { start, end, step }));
      replace(legend, series.slice(0, 50).map((s, i) => h("li", {}, h("span", { class: "swatch", style: `background:${COLORS[i % COLORS.length]}` }), s.name)));
      const rows = instant.resultType === "vector" ? instant.result : instant.resultType === "matrix" ? [] :
        [{ metric: {}, value: instant.result }];
      replace(values, table([
        { title: "Series", cell: (r) => h("code", {}, seriesName(r.metric)) },
        { title: "Value now", cell: (r) => r.value[1], class: "n" },
      ], rows, "No series now."));
      replace(status, h("p", { class: "muted" }, `${series.length} series, ${series.reduce((n, s) => n + s.points.length, 0)} points, step ${step}s.`));
    } catch (e) {
      replace(status, errorBox(e));
    }
  };
  replace(root, h("h1", {}, "Query"),
    h("form", { class: "query", onsubmit: (e) => { e.preventDefault(); submit(); } },
      h("label", { for: "query-expr" }, "PromQL expression"), expr,
      h("div", { class: "form-row" },
        select("query-range", "Range", RANGES.map(([k]) => [k, k]), f.range, (v) => { f.range = v; run(); }),
        h("button", { type: "submit" }, "Execute"))),
    status, graph, legend, card("Values now", values));
  const submit = () => {
    f.expr = expr.value.trim();
    run();
  };
  expr.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(); } });
  return { refresh: run, every: 10 };
}
