// The Warnings view (预警处理情况): the warnings report by the grouping chosen (kept in the URL),
// a weekly chart of raised against resolved per region, and the oldest open warnings of each
// assignee. Numbers as the API gives them (GET /v1/reports/warnings).

import { get } from "./api.js";
import { formatNumber, formatTime, h } from "./dom.js";
import { t } from "./i18n.js";
import { backToBoard, section, table } from "./panels.js";

const GROUPINGS = ["region", "rule", "assignee", "cause", "severity"];
const COLUMNS = ["raised", "acknowledged", "resolved_by_rules", "resolved_by_person", "open", "oldest_open_hours",
  "ack_p50_minutes", "ack_p90_minutes", "resolve_p50_hours", "resolve_p90_hours", "recurred_30d"];
const NS = "http://www.w3.org/2000/svg";

export async function showWarnings(view) {
  const params = new URLSearchParams(location.search);
  const groupBy = GROUPINGS.includes(params.get("group_by")) ? params.get("group_by") : "region";
  view.replaceChildren(backToBoard(), h("h2", { "data-testid": "warnings-title" }, t("warningsReport")), grouping(groupBy));
  const [report, regions, open] = await Promise.all([
    get("/v1/reports/warnings", { group_by: groupBy }).catch((error) => ({ error: error.message })),
    get("/v1/reports/warnings", { group_by: "region" }).catch(() => ({ by_week: [] })),
    get("/v1/alerts", { status: "open,acknowledged", limit: 500 }).catch(() => ({ items: [] })),
  ]);
  if (report.error) {
    view.append(h("p", { class: "error" }, report.error));
    return;
  }
  const label = (row) => row.group ?? (groupBy === "assignee" ? t("unassigned") : "–");
  view.append(
    section("warningsReport", table(["group", ...COLUMNS], report.items.map((row) => h("tr", { "data-group": row.group ?? "" },
      h("td", {}, label(row)), ...COLUMNS.map((column) => h("td", { "data-field": column }, formatNumber(row[column])))))), "warnings-table"),
    section("weeklyRaisedResolved", weekly(regions.by_week || []), "warnings-chart"),
    section("oldestOpen", oldestByAssignee(open.items || []), "oldest-open"),
  );
}

function grouping(groupBy) {
  const select = h("select", { name: "group_by" }, GROUPINGS.map((g) => h("option", { value: g, selected: g === groupBy }, t(g))));
  select.addEventListener("change", () => {
    const params = new URLSearchParams(location.search);
    params.set("group_by", select.value);
    location.search = params.toString();
  });
  return h("form", { class: "filters", "data-testid": "warnings-form" }, h("label", {}, t("groupBy"), " ", select));
}

function svg(tag, attributes = {}, text = null) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== null) element.textContent = text;
  return element;
}

// one row of weeks per region: a bar for raised, a bar for resolved, scaled to the busiest week
function weekly(weeks) {
  if (!weeks.length) return h("p", { class: "empty" }, t("none"));
  const regions = [...new Set(weeks.map((w) => w.group ?? ""))];
  const days = [...new Set(weeks.map((w) => w.week))].sort();
  const most = Math.max(...weeks.map((w) => w.raised));
  const left = 120, column = 44, rowHeight = 70, top = 24;
  const width = Math.max(480, left + days.length * column + 8); // a few weeks stay readable, not blown up
  const chart = svg("svg", { viewBox: `0 0 ${width} ${top + regions.length * rowHeight + 8}`, class: "chart weekly-warnings", role: "img", "aria-label": t("weeklyRaisedResolved") });
  [["raised", 0], ["resolved", 140]].forEach(([part, x]) => chart.append(
    svg("rect", { x: left + x, y: 4, width: 12, height: 12, class: `part ${part}` }), svg("text", { x: left + x + 16, y: 14, class: "legend" }, t(part))));
  regions.forEach((region, r) => {
    const base = top + (r + 1) * rowHeight - 14;
    chart.append(svg("text", { x: left - 8, y: base, "text-anchor": "end", class: "label" }, region || "–"));
    for (const w of weeks.filter((week) => (week.group ?? "") === region)) {
      const x = left + days.indexOf(w.week) * column;
      for (const [part, offset] of [["raised", 4], ["resolved", 20]]) {
        const height = ((rowHeight - 24) * w[part]) / most;
        chart.append(svg("rect", { x: x + offset, y: base - height, width: 14, height, class: `part ${part}`, "data-region": region, "data-week": w.week, "data-part": part, "data-count": w[part] }));
      }
    }
  });
  days.forEach((day, i) => chart.append(svg("text", { x: left + i * column + 4, y: top + regions.length * rowHeight + 4, class: "legend" }, day.slice(5))));
  return chart;
}

// the three longest-open warnings of each assignee, the assignee with the oldest first
function oldestByAssignee(alerts) {
  const by = new Map();
  for (const alert of [...alerts].sort((a, b) => a.first_seen_at.localeCompare(b.first_seen_at))) {
    const who = alert.assignee || "";
    if (!by.has(who)) by.set(who, []);
    if (by.get(who).length < 3) by.get(who).push(alert);
  }
  if (!by.size) return h("p", { class: "empty" }, t("none"));
  return table(["assignee", "rule", "dealer", "firstSeen"], [...by.entries()].flatMap(([who, items]) => items.map((alert) =>
    h("tr", { "data-assignee": who, "data-alert-id": alert.alert_id },
      h("td", {}, who || t("unassigned")), h("td", {}, alert.rule_id), h("td", {}, alert.dealer_name || alert.dealer_id),
      h("td", {}, formatTime(alert.first_seen_at))))));
}
