// The web UI's shell: hash routes to pages, a poll that keeps the page live, the token form.
//
// Live updates are polling: every 2 seconds (10 on the query page) the current page asks
// again, sending each answer's ETag back; the master answers 304 without a body while a
// document is unchanged, and the page redraws only what changed. A sandbox file is
// followed by reading from the offset already shown. Polling pauses while the tab is hidden.
import * as api from "./api.js";
import * as cluster from "./pages-cluster.js";
import * as sat from "./pages-satellite.js";
import { errorBox, replace } from "./ui.js";

const POLL_SECONDS = 2;

const ROUTES = [
  [/^\/$/, cluster.overview, "Overview"],
  [/^\/agents$/, cluster.agents, "Agents"],
  [/^\/agents\/(.+)$/, cluster.agent, "Agent"],
  [/^\/frameworks$/, cluster.frameworks, "Frameworks"],
  [/^\/tasks$/, cluster.tasks, "Tasks"],
  [/^\/tasks\/(.+)$/, cluster.task, "Task"],
  [/^\/alerts$/, sat.alerts, "Alerts"],
  [/^\/rules$/, sat.rules, "Rules"],
  [/^\/targets$/, sat.targets, "Targets"],
  [/^\/decisions$/, sat.decisions, "Decisions"],
  [/^\/silences$/, sat.silences, "Silences"],
  [/^\/query$/, sat.query, "Query"],
];

const main = document.getElementById("main");
const live = document.getElementById("live");
const pause = document.getElementById("pause");
let page = null;
let timer = null;
let paused = false;
let generation = 0;

function parse() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, qs = ""] = raw.split("?");
  return { path, query: new URLSearchParams(qs) };
}

function highlight(path) {
  for (const a of document.querySelectorAll("#nav a")) {
    const target = a.getAttribute("href").slice(1);
    const here = target === "/" ? path === "/" : path === target || path.startsWith(`${target}/`);
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

let running = false;

async function tick(gen) {
  if (gen !== generation || !page || running) return;
  clearTimeout(timer);
  running = true;
  if (!paused && !document.hidden) {
    try {
      await page.refresh();
      live.textContent = `live · ${new Date().toLocaleTimeString()}`;
      live.classList.remove("down");
    } catch (e) {
      live.textContent = `not updated: ${e.message}`;
      live.classList.add("down");
      if (gen === generation && !main.dataset.loaded) replace(main, errorBox(e));
    }
    if (gen === generation) main.dataset.loaded = "1";
  }
  running = false;
  if (gen === generation) timer = setTimeout(() => tick(gen), (page.every || POLL_SECONDS) * 1000);
}

function route() {
  const { path, query } = parse();
  const gen = ++generation;
  clearTimeout(timer);
  delete main.dataset.loaded;
  highlight(path);
  for (const [re, make, title] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    document.title = `${title} · Orbiter`;
    const args = m.slice(1).map(decodeURIComponent);
    page = make(main, query, ...args);
    tick(gen);
    return;
  }
  page = null;
  replace(main, errorBox(`No page ${path}; pick one above.`));
}

// ----------------------------------------------------------------- token

const form = document.getElementById("token-form");
const input = document.getElementById("token-input");
const why = document.getElementById("token-why");

function showToken(message = "") {
  form.hidden = false;
  why.textContent = message;
  input.focus();
}

document.getElementById("token-button").addEventListener("click", () => {
  if (form.hidden) showToken(api.token() ? "A token is in use." : "");
  else form.hidden = true;
});
form.addEventListener("submit", (e) => {
  e.preventDefault();
  api.setToken(input.value.trim());
  input.value = "";
  form.hidden = true;
  route();
});
document.getElementById("token-clear").addEventListener("click", () => {
  api.setToken("");
  input.value = "";
  why.textContent = "Forgotten.";
  route();
});
api.onUnauthorized((status, message) => {
  if (form.hidden) showToken(`The master wants a bearer token: ${message}`);
});

pause.addEventListener("click", () => {
  paused = !paused;
  pause.setAttribute("aria-pressed", String(paused));
  pause.textContent = paused ? "Resume" : "Pause";
  live.textContent = paused ? "paused" : live.textContent;
  if (!paused) tick(generation);
});
document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(generation); });
window.addEventListener("hashchange", () => {
  // setQuery rewrites the hash of the same page (filters) with replaceState: no event.
  route();
  main.focus({ preventScroll: true });
});
route();
