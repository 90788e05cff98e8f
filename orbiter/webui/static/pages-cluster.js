// The cluster's pages: overview, agents, one agent, frameworks, tasks, one task (sandbox).
import * as api from "./api.js";
import {
  ago, badge, bytesText, card, enc, errorBox, h, labels, link, matches, num, quantity,
  replace, search, select, setQuery, table, time,
} from "./ui.js";

export const AGENT_STATES = ["active", "deactivated", "draining", "drained", "unreachable", "gone"];
export const TASK_STATES = ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING",
  "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED",
  "TASK_UNREACHABLE", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN"];

/** GET several paths at once: {data: {key: value | Error}, changed}. */
export async function gather(paths) {
  const keys = Object.keys(paths);
  const settled = await Promise.allSettled(keys.map((k) => api.get(paths[k])));
  const data = {};
  let changed = false;
  settled.forEach((r, i) => {
    if (r.status === "fulfilled") {
      data[keys[i]] = r.value.data;
      changed ||= r.value.changed;
    } else {
      data[keys[i]] = r.reason;
      changed = true;
    }
  });
  return { data, changed };
}

export function agentState(a) {
  if (a.status === "gone" || a.status === "unreachable") return a.status;
  return a.maintenance?.mode || "active";
}

// ------------------------------------------------------------------- overview

export function budgetText(p) {
  const used = p.out.length;
  return `${used} of ${p.allowed} agent${p.allowed === 1 ? "" : "s"} Satellite may take out is used`;
}

export function overview(root) {
  const body = h("div", { class: "grid" });
  let drawn = false; // answers may come from the ETag cache (304) when the page is reopened
  replace(root, h("h1", {}, "Overview"), body);
  return {
    async refresh() {
      const { data, changed } = await gather({
        summary: "/api/v1/summary", health: "/health", alerts: "/api/v1/alerts",
        policy: "/api/v1/satellite/policy",
      });
      if (!changed && drawn) return;
      drawn = true;
      const s = data.summary;
      if (s instanceof Error) { replace(body, errorBox(s)); return; }
      const hl = data.health instanceof Error ? null : data.health;
      const leader = hl?.leading_master;
      replace(body,
        card("Leading master",
          h("dl", {},
            h("dt", {}, "Master"), h("dd", {}, s.master.id),
            h("dt", {}, "Host"), h("dd", {}, s.master.hostname),
            h("dt", {}, "gRPC"), h("dd", {}, leader?.grpc_address || s.master.grpc_address),
            h("dt", {}, "HTTP"), h("dd", {}, leader?.http_address || s.master.http_address),
            h("dt", {}, "Version"), h("dd", {}, s.master.version),
            h("dt", {}, "Up since"), h("dd", {}, time(s.master.start_time)),
            h("dt", {}, "Outstanding offers"), h("dd", {}, num(s.offers)))),
        card("Resources", resourcesTable(s.resources)),
        card("Agents", counts(AGENT_STATES.map((k) => [k, s.agents[k] || 0]),
          (k) => `#/agents?state=${k}`)),
        card("Tasks", counts(Object.entries(s.tasks), (k) => `#/tasks?state=${k}`, "No tasks yet.")),
        card("Frameworks", counts(Object.entries(s.frameworks), (k) => `#/frameworks?status=${k}`, "No frameworks.")),
        card("Firing alerts", firing(data.alerts)),
        card("Satellite's safety budget", policyView(data.policy)));
    },
  };
}

function resourcesTable(resources) {
  const rows = Object.entries(resources).map(([kind, r]) => ({ kind, ...r }));
  const bar = (r) => {
    const pct = (v) => (r.total ? (100 * v) / r.total : 0);
    return h("div", { class: "bar", role: "img",
      "aria-label": `${num(pct(r.used), 0)}% used, ${num(pct(r.offered), 0)}% offered` },
    h("span", { class: "used", style: `width:${pct(r.used)}%` }),
    h("span", { class: "offered", style: `width:${pct(r.offered)}%` }));
  };
  return table([
    { title: "Kind", cell: (r) => r.kind },
    { title: "Total", cell: (r) => quantity(r.kind, r.total), class: "n" },
    { title: "Offered", cell: (r) => quantity(r.kind, r.offered), class: "n" },
    { title: "Used", cell: (r) => quantity(r.kind, r.used), class: "n" },
    { title: "Idle", cell: (r) => quantity(r.kind, r.idle), class: "n" },
    { title: "", cell: bar, class: "wide" },
  ], rows, "No agents, so no resources.");
}

function counts(entries, href, empty = "None.") {
  if (!entries.length) return h("p", { class: "empty" }, empty);
  return h("ul", { class: "counts" }, entries.map(([k, n]) =>
    h("li", {}, link(href(k), h("span", { class: "count" }, num(n)), { "aria-label": `${n} ${k}` }), " ", badge(k))));
}

function firing(alerts) {
  if (alerts instanceof Error) return h("p", { class: "muted" }, alerts.status === 404 ? "Satellite is off." : alerts.message);
  const list = (alerts.data?.alerts || []).filter((a) => a.state === "firing");
  if (!list.length) return h("p", { class: "empty" }, "Nothing is firing.");
  return h("ul", { class: "alerts" }, list.map((a) => h("li", {},
    link(`#/alerts?search=${enc(a.labels.alertname || "")}`, a.labels.alertname || "alert"), " ",
    labels(a.labels, ["alertname"]), " ", h("span", { class: "muted" }, a.annotations?.summary || ""))));
}

function policyView(p) {
  if (p instanceof Error) return h("p", { class: "muted" }, p.status === 404 ? "Satellite is off." : p.message);
  return h("div", {},
    h("p", { class: "budget" }, budgetText(p)),
    h("p", {}, `${p.room} more may go out now; ${p.total} agent${p.total === 1 ? "" : "s"} counted.`),
    p.out.length ? h("p", {}, "Out of service: ", p.out.map((id) => [link(`#/agents/${enc(id)}`, id), " "])) : null,
    h("p", {}, `${p.actions_in_window} of ${p.max_actions_per_window} take-outs used in the last ${Math.round(p.window_seconds / 60)}m; at least ${p.min_active_agents} stay active.`),
    p.dry_run ? h("p", { class: "warn" }, "Dry run: decisions are only reported.") : null,
    p.frozen ? h("p", { class: "warn" }, "Panic freeze: Satellite takes nothing out until the flood of requests ends.") : null,
    p.fenced ? h("p", { class: "warn" }, "Fenced: another Satellite owns the state.") : null);
}

// ------------------------------------------------------------------- agents

export function agents(root, query) {
  const f = { state: query.get("state") || "", search: query.get("search") || "" };
  const list = h("div", {});
  let last = null;
  const render = () => {
    setQuery("/agents", f);
    if (last === null) return;
    const rows = last.agents.filter((a) => (!f.state || agentState(a) === f.state) &&
      matches(f.search, a.id, a.hostname, a.http_address, ...Object.entries(a.attributes).map(([k, v]) => `${k}:${v}`)));
    replace(list, table([
      { title: "Agent", cell: (a) => link(`#/agents/${enc(a.id)}`, a.id) },
      { title: "Host", cell: (a) => a.hostname },
      { title: "State", cell: (a) => badge(agentState(a)) },
      { title: "Link", cell: (a) => a.status },
      { title: "Maintenance", cell: (a) => a.maintenance.mode === "active" ? "—" :
        `${a.maintenance.by || "?"}: ${a.maintenance.reason || ""}` },
      { title: "Resources", cell: (a) => a.resources.text },
      { title: "Used", cell: (a) => a.used.text || "—" },
      { title: "Tasks", cell: (a) => num(a.tasks), class: "n" },
      { title: "Pin", cell: (a) => a.pin ? `${a.pin.state} until ${new Date(a.pin.until * 1000).toLocaleString()}` : "" },
    ], rows, "No agent matches."));
  };
  replace(root, h("h1", {}, "Agents"),
    h("div", { class: "filters" },
      select("agent-state", "State", [["", "all"], ...AGENT_STATES.map((s) => [s, s])], f.state, (v) => { f.state = v; render(); }),
      search("agent-search", "Search", f.search, (v) => { f.search = v; render(); })),
    list);
  return {
    async refresh() {
      const r = await api.get("/api/v1/agents");
      if (!r.changed && last) return;
      last = r.data;
      render();
    },
  };
}

const ACTIONS = {
  deactivate: "Deactivate (no new offers; tasks keep running)",
  drain: "Drain (no offers; tasks killed after the grace period)",
  reactivate: "Reactivate (back in service)",
  pin: "Pin (Satellite must leave it so until the pin expires)",
  unpin: "Unpin",
};

export function agent(root, query, id) {
  const info = h("div", { class: "grid" });
  const result = h("div", { class: "result", role: "status", "aria-live": "polite" });
  const reason = h("input", { id: "action-reason", type: "text", required: true, placeholder: "why (kept in the maintenance record)" });
  const grace = h("input", { id: "action-grace", type: "number", min: 0, max: 86400, value: "30" });
  const pinState = h("select", { id: "pin-state" }, h("option", { value: "inactive" }, "inactive"), h("option", { value: "active" }, "active"));
  const pinHours = h("input", { id: "pin-hours", type: "number", min: 0.01, step: "any", value: "2" });
  const confirmBox = h("div", { class: "confirm", hidden: true });
  const ask = (action) => {
    if (action !== "unpin" && action !== "reactivate" && !reason.value.trim()) {
      replace(result, errorBox("Give a reason: it is kept with the agent's maintenance record."));
      reason.focus();
      return;
    }
    const yes = h("button", { type: "button", class: "danger", onclick: () => act(action) }, `Yes, ${action} ${id}`);
    replace(confirmBox, h("p", {}, `${ACTIONS[action]}: ${id}${reason.value ? ` — “${reason.value}”` : ""}. Sure?`), yes, " ",
      h("button", { type: "button", onclick: () => { confirmBox.hidden = true; } }, "Cancel"));
    confirmBox.hidden = false;
    yes.focus();
  };
  const act = async (action) => {
    confirmBox.hidden = true;
    const path = `/api/v1/agents/${enc(id)}/${action === "unpin" ? "pin" : action}`;
    const r = reason.value.trim();
    let body = r ? { reason: r } : {};
    if (action === "drain") body.grace = Number(grace.value || 30);
    if (action === "pin") body = { state: pinState.value, for_seconds: Number(pinHours.value) * 3600, reason: r };
    try {
      const a = await api.send(action === "unpin" ? "DELETE" : "POST", path, action === "unpin" ? undefined : body);
      replace(result, h("p", { class: "ok" }, `Done: ${id} is now ${agentState(a)}${a.pin ? `, pinned ${a.pin.state}` : ""}.`));
      page.refresh();
    } catch (e) {
      replace(result, errorBox(`${action} refused: ${e.message}`));
    }
  };
  const actions = h("section", { class: "card actions", "aria-label": "Maintenance" },
    h("h2", {}, "Maintenance"),
    h("div", { class: "form-row" }, h("label", { for: "action-reason" }, "Reason"), reason),
    h("div", { class: "form-row" }, h("label", { for: "action-grace" }, "Drain grace (s)"), grace),
    h("div", { class: "form-row" }, h("label", { for: "pin-state" }, "Pin to"), pinState,
      h("label", { for: "pin-hours" }, "for hours"), pinHours),
    h("div", { class: "buttons" }, Object.keys(ACTIONS).map((a) =>
      h("button", { type: "button", dataset: { action: a }, onclick: () => ask(a), title: ACTIONS[a] }, a[0].toUpperCase() + a.slice(1)))),
    confirmBox, result);
  const summary = h("section", { class: "card", "aria-label": "Agent" });
  replace(root, h("p", { class: "crumbs" }, link("#/agents", "Agents"), " / ", id), h("h1", {}, `Agent ${id}`),
    h("div", { class: "grid" }, summary, actions), info);
  const page = {
    async refresh() {
      const q = (expr) => `/api/v1/query?query=${enc(expr)}`;
      const { data } = await gather({
        agent: `/api/v1/agents/${enc(id)}`,
        tasks: `/api/v1/tasks?agent_id=${enc(id)}`,
        events: "/api/v1/events",
        decisions: "/api/v1/satellite/events?limit=1000",
      });
      const metrics = await Promise.allSettled([
        api.prom(q(`{__name__=~"orbiter_host_.*",agent="${id}"}`)),
        api.prom(q(`orbiter_check_status{agent="${id}"}`)),
      ]);
      const a = data.agent;
      if (a instanceof Error) { replace(summary, errorBox(a)); return; }
      const fact = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
      const m = a.maintenance;
      replace(summary, h("h2", {}, "Agent"),
        h("dl", {}, fact("State", badge(agentState(a))), fact("Link", a.status), fact("Host", a.hostname),
          fact("HTTP", a.http_address), fact("Version", a.version), fact("Registered", time(a.registered_time)),
          fact("Last seen", time(a.last_seen)), fact("Principal", a.principal || "—"),
          fact("Maintenance", m.mode === "active" ? "active" : `${m.mode} by ${m.by || "?"} ${m.since ? ago(m.since) : ""}: ${m.reason}`),
          fact("Pin", a.pin ? `${a.pin.state} until ${new Date(a.pin.until * 1000).toLocaleString()}: ${a.pin.reason}` : "none")));
      replace(info,
        card("Resources", table([
          { title: "", cell: (r) => r[0] }, { title: "Resources", cell: (r) => r[1].text || "—" }],
        [["total", a.resources], ["used", a.used], ["offered", a.offered]])),
        card("Attributes", Object.keys(a.attributes).length ? labels(a.attributes) : h("p", { class: "empty" }, "No attributes.")),
        card("Checks", metricTable(metrics[1], (s) => s.metric.check || "?", ["__name__", "agent", "job", "instance", "check"],
          (v) => badge({ 0: "ok", 1: "warning", 2: "critical" }[v] || v))),
        span(card("Tasks", data.tasks instanceof Error ? errorBox(data.tasks) : taskTable(data.tasks.tasks))),
        span(card("Maintenance history", historyTable(data.events, data.decisions, id))),
        span(card("Host metrics", metricTable(metrics[0], hostName, ["__name__", "agent", "job", "instance"], null,
          (s) => !s.metric.__name__.endsWith("_total")))));
    },
  };
  return page;
}

function span(el) {
  el.classList.add("span");
  return el;
}

function hostName(s) {
  return s.metric.__name__.replace(/^orbiter_host_/, "");
}

/** Host gauges as Satellite last scraped them (counters left out: a rate says more). */
function metricTable(settled, name, skip, value, keep = () => true) {
  if (settled.status === "rejected") return h("p", { class: "muted" }, settled.reason.status === 404 ? "Satellite is off." : settled.reason.message);
  const show = value || ((v, s) => (s.metric.__name__.endsWith("_bytes") ? bytesText(Number(v)) : num(v)));
  const rows = (settled.value.result || []).filter(keep);
  return table([
    { title: "Name", cell: (s) => name(s) },
    { title: "Labels", cell: (s) => labels(s.metric, skip) },
    { title: "Value", cell: (s) => show(s.value[1], s), class: "n" },
  ], rows.sort((a, b) => name(a).localeCompare(name(b))), "No samples yet.");
}

function historyTable(events, decisions, id) {
  const rows = [];
  if (!(events instanceof Error)) for (const e of events.events) if (e.agent_id === id) rows.push({ time: e.time, who: e.by || "master", what: e.kind, why: e.message });
  if (!(decisions instanceof Error)) for (const d of decisions.events) if (d.agent === id) rows.push({ time: d.time, who: "satellite", what: `${d.outcome} ${d.action}`, why: `${d.rule}: ${d.reason}` });
  rows.sort((a, b) => b.time - a.time);
  return table([
    { title: "When", cell: (r) => time(r.time) },
    { title: "Who", cell: (r) => r.who },
    { title: "What", cell: (r) => r.what },
    { title: "Why", cell: (r) => r.why },
  ], rows, "Nothing happened to this agent yet.");
}

// ------------------------------------------------------------------- frameworks

export function frameworks(root, query) {
  const f = { status: query.get("status") || "", search: query.get("search") || "" };
  const list = h("div", {});
  let last = null;
  const render = () => {
    setQuery("/frameworks", f);
    if (last === null) return;
    const rows = last.frameworks.filter((w) => (!f.status || w.status === f.status) && matches(f.search, w.id, w.name, w.principal, ...w.roles));
    replace(list, table([
      { title: "Framework", cell: (w) => link(`#/tasks?framework_id=${enc(w.id)}`, w.id) },
      { title: "Name", cell: (w) => w.name },
      { title: "Status", cell: (w) => badge(w.status) },
      { title: "Roles", cell: (w) => w.roles.join(", ") },
      { title: "Principal", cell: (w) => w.principal || "—" },
      { title: "Tasks", cell: (w) => num(w.tasks), class: "n" },
      { title: "Offers", cell: (w) => num(w.offers), class: "n" },
      { title: "Registered", cell: (w) => time(w.registered_time) },
    ], rows, "No framework matches."));
  };
  replace(root, h("h1", {}, "Frameworks"),
    h("div", { class: "filters" },
      select("framework-status", "Status", [["", "all"], ["connected", "connected"], ["disconnected", "disconnected"], ["completed", "completed"]], f.status, (v) => { f.status = v; render(); }),
      search("framework-search", "Search", f.search, (v) => { f.search = v; render(); })),
    list);
  return {
    async refresh() {
      const r = await api.get("/api/v1/frameworks");
      if (!r.changed && last) return;
      last = r.data;
      render();
    },
  };
}

// ------------------------------------------------------------------- tasks

function taskHref(t) {
  return `#/tasks/${enc(t.id)}?framework_id=${enc(t.framework_id)}`;
}

function taskTable(tasks) {
  return table([
    { title: "Task", cell: (t) => link(taskHref(t), t.id) },
    { title: "Name", cell: (t) => t.name },
    { title: "State", cell: (t) => badge(t.state) },
    { title: "Agent", cell: (t) => link(`#/agents/${enc(t.agent_id)}`, t.hostname || t.agent_id) },
    { title: "Framework", cell: (t) => t.framework_id },
    { title: "Resources", cell: (t) => t.resources.text },
    { title: "Updated", cell: (t) => time(t.updated) },
    { title: "Message", cell: (t) => [t.reason ? `${t.reason} ` : "", t.message] },
  ], tasks, "No task matches.");
}

export function tasks(root, query) {
  const f = { state: query.get("state") || "", search: query.get("search") || "", framework_id: query.get("framework_id") || "" };
  const list = h("div", {});
  let last = null;
  const render = () => {
    setQuery("/tasks", f);
    if (last === null) return;
    const rows = last.tasks.filter((t) => (!f.state || t.state === f.state) && (!f.framework_id || t.framework_id === f.framework_id) &&
      matches(f.search, t.id, t.name, t.agent_id, t.hostname, t.framework_id, t.message));
    rows.sort((a, b) => (b.updated || 0) - (a.updated || 0));
    replace(list, taskTable(rows));
  };
  replace(root, h("h1", {}, "Tasks"),
    h("div", { class: "filters" },
      select("task-state", "State", [["", "all"], ...TASK_STATES.map((s) => [s, s.replace(/^TASK_/, "")])], f.state, (v) => { f.state = v; render(); }),
      search("task-search", "Search", f.search, (v) => { f.search = v; render(); }),
      f.framework_id ? h("span", {}, `framework ${f.framework_id} `, h("button", { type: "button", onclick: () => { f.framework_id = ""; render(); } }, "Show all")) : null),
    list);
  return {
    async refresh() {
      const r = await api.get("/api/v1/tasks");
      if (!r.changed && last) return;
      last = r.data;
      render();
    },
  };
}

const TAIL_START = 64 * 1024; // a file opened shows at most its last 64 KiB, then follows
const READ_CHUNK = 256 * 1024;

export function task(root, query, id) {
  const fw = query.get("framework_id") || "";
  const info = h("div", { class: "grid" });
  const files = h("div", {});
  const viewer = h("pre", { class: "file", id: "file-view", tabindex: "0", "aria-label": "File contents" });
  const follow = h("input", { type: "checkbox", id: "follow", checked: true });
  const fileName = h("strong", { id: "file-name" }, "");
  const fileError = h("div", { role: "status" });
  let current = null; // {path, offset, decoder}
  const base = () => `/api/v1/tasks/${enc(id)}/files`;
  const fwq = () => (fw ? `framework_id=${enc(fw)}&` : "");

  const readMore = async () => {
    if (!current) return;
    const c = current;
    for (let i = 0; i < 8; i++) { // at most 2 MiB per poll; the rest next time
      const buf = await api.bytes(`${base()}/read?${fwq()}path=${enc(c.path)}&offset=${c.offset}&length=${READ_CHUNK}`);
      if (c !== current || !buf.byteLength) return;
      c.offset += buf.byteLength;
      const atBottom = viewer.scrollTop + viewer.clientHeight >= viewer.scrollHeight - 4;
      viewer.append(c.decoder.decode(buf, { stream: true }));
      if (follow.checked && atBottom) viewer.scrollTop = viewer.scrollHeight;
      if (buf.byteLength < READ_CHUNK) return;
    }
  };
  const open = async (path, size) => {
    current = { path, offset: Math.max(0, size - TAIL_START), decoder: new TextDecoder() };
    fileName.textContent = path + (size > TAIL_START ? ` (last ${TAIL_START / 1024} KiB)` : "");
    viewer.replaceChildren();
    replace(fileError);
    try {
      await readMore();
      viewer.scrollTop = viewer.scrollHeight;
    } catch (e) {
      replace(fileError, errorBox(e));
    }
  };
  replace(root, h("p", { class: "crumbs" }, link("#/tasks", "Tasks"), " / ", id), h("h1", {}, `Task ${id}`), info,
    h("section", { class: "card wide", "aria-label": "Sandbox" }, h("h2", {}, "Sandbox"), files,
      h("div", { class: "viewer-bar" }, fileName, " ", h("label", { for: "follow" }, follow, " follow (live tail)")),
      fileError, viewer));
  let drawn = false;
  let listed = false;
  return {
    async refresh() {
      const r = await api.get(`/api/v1/tasks/${enc(id)}`);
      const mine = r.data.tasks.filter((t) => !fw || t.framework_id === fw);
      const t = mine.sort((a, b) => (b.updated || 0) - (a.updated || 0))[0];
      if (r.changed || !drawn) {
        drawn = true;
        if (!t) { replace(info, errorBox(`No task ${id} in framework ${fw}`)); return; }
        const fact = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
        replace(info,
          card("Task", h("dl", {}, fact("State", badge(t.state)), fact("Name", t.name),
            fact("Framework", link(`#/tasks?framework_id=${enc(t.framework_id)}`, t.framework_id)),
            fact("Agent", link(`#/agents/${enc(t.agent_id)}`, t.hostname || t.agent_id)),
            fact("Resources", t.resources.text), fact("Role", t.role || "—"),
            fact("Exit code", t.exit_code ?? "—"), fact("Reason", t.reason || "—"), fact("Message", t.message || "—"))),
          card("State history", table([
            { title: "When", cell: (s) => time(s.time) },
            { title: "State", cell: (s) => badge(s.state) },
            { title: "Reason", cell: (s) => s.reason || "—" },
            { title: "Source", cell: (s) => s.source || "—" },
            { title: "Message", cell: (s) => s.message },
          ], [...(t.history || [])].reverse(), "No update yet (staging).")));
      }
      try {
        const listing = await api.get(`${base()}?${fwq()}`.replace(/[?&]$/, ""));
        if (listing.changed || !listed) {
          listed = true;
          replace(files, table([
            { title: "File", cell: (f) => h("button", { type: "button", class: "linkish", onclick: () => open(f.path, f.size) }, f.path) },
            { title: "Size", cell: (f) => bytesText(f.size), class: "n" },
          ], listing.data.files, "The sandbox is empty."));
        }
        if (!current) {
          const stdout = listing.data.files.find((f) => f.path === "stdout");
          if (stdout) await open("stdout", stdout.size);
        } else if (follow.checked) {
          await readMore();
        }
      } catch (e) {
        replace(files, errorBox(`Sandbox: ${e.message}`));
      }
    },
  };
}
