// The board: counts by severity, filters kept in the URL, the alert list, updated live.

import { actor, get } from "./api.js";
import { openAction } from "./actions.js";
import { formatTime, h } from "./dom.js";
import { dealerLabel, summaryOf, t } from "./i18n.js";
import { follow } from "./live.js";

const SEVERITIES = ["critical", "warning", "info"];
const RANK = { critical: 2, warning: 1, info: 0 };
const FILTERS = ["severity", "status", "rule_id", "region", "dealer_id", "assignee"];
// besides the lifecycle's: moving an alert to someone, and a finding (any state)
const ASSIGN = { name: "assign", path: "assign", text: "note", text_required: false, input: "to" };
const FINDING = { name: "addFinding", path: "notes", text: "text", text_required: true };
const LIMIT = 500;

// lifecycle: the alert's statuses, the active ones and the actions between them (notify's alert.py)
export function showBoard(view, setConnection, lifecycle) {
  const STATUS_CHOICES = {
    active: lifecycle.active.join(","), ...Object.fromEntries(lifecycle.statuses.map((s) => [s, s])), all: "",
  };
  const params = new URLSearchParams(location.search);
  const filters = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) || ""]));
  if (!(filters.status in STATUS_CHOICES)) filters.status = "active";
  const alerts = new Map();
  const fresh = new Set();
  const expanded = new Set();
  let truncated = false;
  let stop = () => {};

  const counts = h("div", { class: "counts", "data-testid": "counts" });
  const shown = h("p", { class: "shown" });
  const rows = h("tbody");
  const table = h("table", { class: "alerts", "data-testid": "alerts" },
    h("thead", {}, h("tr", {}, ["severity", "status", "rule", "dealer", "summary", "assignee", "firstSeen", "actions"].map((k) => h("th", {}, t(k))))),
    rows);
  view.replaceChildren(filterForm(filters, STATUS_CHOICES, apply), counts, shown, table);

  function apply(changed) {
    Object.assign(filters, changed);
    const query = new URLSearchParams(location.search);
    for (const name of FILTERS) {
      if (filters[name] && !(name === "status" && filters[name] === "active")) query.set(name, filters[name]);
      else query.delete(name);
    }
    history.replaceState(null, "", `${location.pathname}${query.size ? `?${query}` : ""}`);
    load();
  }

  // the alert's fixed properties go to the server; status changes, so it is checked here
  const fixed = () => ({
    severity: filters.severity, rule_id: filters.rule_id, region: filters.region, dealer_id: filters.dealer_id, assignee: filters.assignee,
  });
  const statuses = () => STATUS_CHOICES[filters.status].split(",").filter(Boolean);
  const wanted = (alert) => !statuses().length || statuses().includes(alert.status);

  async function load() {
    stop();
    const page = await get("/v1/alerts", { ...fixed(), status: STATUS_CHOICES[filters.status], limit: LIMIT });
    alerts.clear();
    for (const alert of page.items) alerts.set(alert.alert_id, alert);
    truncated = Boolean(page.next_cursor);
    render();
    refreshCounts();
    stop = follow(fixed(), page.stream_position, onChange, setConnection, load);
  }

  // an alert in view stays until the view is reloaded, showing its new state (a resolved one
  // is seen to be resolved, not just gone); a new one joins if it matches the filters
  function onChange({ change, alert }) {
    if (change === "opened") fresh.add(alert.alert_id);
    if (alerts.has(alert.alert_id) || wanted(alert)) alerts.set(alert.alert_id, { ...(alerts.get(alert.alert_id) || {}), ...alert });
    render();
    refreshCounts();
  }

  let counting = null;
  function refreshCounts() {
    clearTimeout(counting);
    counting = setTimeout(async () => {
      const { severity, ...others } = fixed();
      const result = await get("/v1/alerts/counts", { ...others, status: STATUS_CHOICES.active }).catch(() => null);
      if (!result) return;
      counts.replaceChildren(...SEVERITIES.map((name) => h("button", {
        type: "button", class: `count ${name}${filters.severity === name ? " selected" : ""}`, "data-severity": name,
        onclick: () => apply({ severity: filters.severity === name ? "" : name }),
      }, h("strong", {}, result.by_severity[name]), " ", t(name))));
    }, 150);
  }

  function render() {
    // most severe first, then newest first
    const sorted = [...alerts.values()].sort((a, b) =>
      RANK[b.severity] - RANK[a.severity] || String(b.first_seen_at).localeCompare(String(a.first_seen_at)));
    const toggle = (id) => {
      if (!expanded.delete(id)) expanded.add(id);
      render();
    };
    const acted = (answer) => {
      if (answer?.alert_id) onChange({ change: answer.status, alert: answer });
    };
    rows.replaceChildren(...sorted.flatMap((alert) => [
      row(alert, lifecycle, fresh.has(alert.alert_id), acted, toggle),
      expanded.has(alert.alert_id) ? details(alert) : null,
    ].filter(Boolean)));
    if (!sorted.length) rows.replaceChildren(h("tr", {}, h("td", { colspan: 8, class: "empty" }, t("noAlerts"))));
    shown.textContent = truncated ? t("truncated", { n: LIMIT }) : t("showing", { n: sorted.length });
  }

  load().catch((error) => setConnection("disconnected", error.message));
}

function filterForm(filters, choices, apply) {
  const select = (name, choices) => h("label", {}, t(name === "rule_id" ? "rule" : name === "dealer_id" ? "dealer" : name),
    h("select", { name, onchange: (e) => apply({ [name]: e.target.value }) },
      choices.map(([value, label]) => h("option", { value, selected: filters[name] === value }, label))));
  const text = (name, label) => h("label", {}, t(label),
    h("input", { name, value: filters[name], size: 12, onchange: (e) => apply({ [name]: e.target.value.trim() }) }));
  return h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
    select("severity", [["", t("any")], ...SEVERITIES.map((s) => [s, t(s)])]),
    select("status", Object.keys(choices).map((s) => [s, t(s)])),
    text("rule_id", "rule"), text("region", "region"), text("dealer_id", "dealer"), text("assignee", "assignee"),
    // "mine": the alerts of the person named at the top of the page
    h("button", { type: "button", "data-testid": "mine", onclick: () => actor() && apply({ assignee: actor() }) }, t("mine")));
}

function row(alert, lifecycle, isNew, acted, toggle) {
  const marks = [h("span", { class: `badge status-${alert.status}` }, t(alert.status))];
  if (isNew && alert.status === lifecycle.statuses[0]) marks.unshift(h("span", { class: "badge new" }, t("new")));
  if (alert.silenced_by?.length) marks.push(h("span", { class: "badge silenced" }, t("silenced")));
  const act = (kind, action) => h("button", { type: "button", "data-action": kind, onclick: () => openAction(kind, alert, acted, action) }, t(kind));
  const active = lifecycle.active.includes(alert.status);
  return h("tr", { class: `alert ${alert.status}${isNew ? " fresh" : ""}`, "data-alert-id": alert.alert_id, "data-status": alert.status },
    h("td", {}, h("span", { class: `severity ${alert.severity}` }, t(alert.severity))),
    h("td", { class: "marks" }, marks),
    h("td", {}, alert.rule_id, alert.count > 1 ? h("small", {}, ` ×${alert.count}`) : null),
    h("td", { class: "nowrap" }, h("a", { href: `?dealer=${encodeURIComponent(alert.dealer_id)}${langSuffix()}`, class: "dealer" }, dealerLabel(alert.dealer_id, alert.dealer_name))),
    h("td", { class: "summary" }, summaryOf(alert), " ",
      h("button", { type: "button", class: "link", "data-action": "details", onclick: () => toggle(alert.alert_id) }, t("details"))),
    h("td", { class: "assignee" }, alert.assignee || h("span", { class: "empty" }, t("unassigned"))),
    h("td", { class: "nowrap" }, formatTime(alert.first_seen_at)),
    h("td", { class: "row-actions" },
      ...lifecycle.actions.filter((action) => action.from.includes(alert.status))
        .map((action) => act(action.name, action.choice ? { ...action, choices: lifecycle.causes } : action)),
      active && !alert.silenced_by?.length ? act("silence") : null,
      active ? act("assign", ASSIGN) : null,
      act("addFinding", FINDING)));
}

// who did what, and who was told: the alert's history and its delivery log
function details(alert) {
  const history = (alert.history || []).map((step) => h("li", {},
    h("strong", {}, t(step.action)), step.action === "assigned" ? ` → ${step.to || t("unassigned")}` : "",
    step.cause ? ` (${step.cause})` : "", ` · ${step.by} · ${formatTime(step.at)}`, step.text ? ` · ${step.text}` : ""));
  const deliveries = (alert.deliveries || []).map((d) => h("li", {},
    `${t(d.kind)} → ${d.receiver}: `, h("strong", {}, t(d.status)), ` (${d.attempts}×${d.last_error ? `, ${d.last_error}` : ""})`));
  return h("tr", { class: "details", "data-details-for": alert.alert_id }, h("td", { colspan: 8 },
    h("div", { class: "columns" },
      h("div", {}, h("h4", {}, t("history")), h("ol", {}, history)),
      h("div", {}, h("h4", {}, t("deliveries")), deliveries.length ? h("ul", {}, deliveries) : h("p", { class: "empty" }, t("none"))))));
}

function langSuffix() {
  const lang = new URLSearchParams(location.search).get("lang");
  return lang ? `&lang=${lang}` : "";
}
