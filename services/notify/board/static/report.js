// The visit-plan report (拜访计划执行情况): plans of a period by visitor, region or dealer, how
// many were done on time, done late, missed, cancelled or are still pending, and the on-time rate;
// a table and a stacked bar per group. The period and grouping are in the URL.

import { get } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { backToBoard, section, table } from "./panels.js";

const PARTS = ["done", "done-late", "missed", "cancelled", "pending"];
const partText = (part) => t(part === "pending" ? "planned" : part); // still to be carried out
const NS = "http://www.w3.org/2000/svg";

export async function showReport(view) {
  const params = new URLSearchParams(location.search);
  const wanted = { group_by: params.get("group_by") || "visitor", since: params.get("since") || "", until: params.get("until") || "" };
  view.replaceChildren(backToBoard(), h("h2", { "data-testid": "report-title" }, t("report")), form(wanted));
  const report = await get("/v1/reports/visit-plans", wanted).catch((error) => ({ error: error.message }));
  if (report.error) {
    view.append(h("p", { class: "error" }, report.error));
    return;
  }
  const label = (row) => row.group || (report.group_by === "region" ? t("unknownRegion") : "–");
  view.append(
    section("report", bars(report.items, label), "report-chart"),
    section("visitPlans", table(["group", "plans", ...PARTS.map((part) => (part === "pending" ? "planned" : part)), "onTimeRate"], report.items.map((row) => h("tr", { "data-group": row.group },
      h("td", {}, label(row)), h("td", {}, row.planned), ...PARTS.map((part) => h("td", { "data-part": part }, row[part])),
      h("td", {}, row.on_time_rate === null ? "–" : `${Math.round(row.on_time_rate * 100)}%`)))), "report-table"),
  );
}

function form(wanted) {
  const choice = (value) => h("option", { value, selected: value === wanted.group_by }, t(value === "dealer_id" ? "dealer" : value));
  const since = h("input", { type: "date", name: "since", value: wanted.since });
  const until = h("input", { type: "date", name: "until", value: wanted.until });
  const group = h("select", { name: "group_by" }, ["visitor", "region", "dealer"].map(choice));
  const submit = (event) => {
    event.preventDefault();
    const params = new URLSearchParams(location.search);
    for (const input of [group, since, until]) {
      if (input.value) params.set(input.name, input.value);
      else params.delete(input.name);
    }
    location.search = params.toString();
  };
  return h("form", { class: "filters", onsubmit: submit, "data-testid": "report-form" },
    h("label", {}, t("groupBy"), " ", group), h("label", {}, t("since"), " ", since), h("label", {}, t("until"), " ", until),
    h("button", { type: "submit" }, t("show")));
}

function svg(tag, attributes = {}, text = null) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== null) element.textContent = text;
  return element;
}

// one horizontal bar per group, its parts side by side in proportion to the group's plans
function bars(rows, label) {
  if (!rows.length) return h("p", { class: "empty" }, t("none"));
  const width = 720, left = 160, barHeight = 22, gap = 8, top = 28;
  const most = Math.max(...rows.map((row) => row.planned));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${top + rows.length * (barHeight + gap)}`, class: "chart report", role: "img", "aria-label": t("report") });
  PARTS.forEach((part, index) => {
    chart.append(svg("rect", { x: left + index * 110, y: 4, width: 12, height: 12, class: `part ${part}` }),
      svg("text", { x: left + index * 110 + 16, y: 14, class: "legend" }, partText(part)));
  });
  rows.forEach((row, index) => {
    const y = top + index * (barHeight + gap);
    chart.append(svg("text", { x: left - 8, y: y + barHeight * 0.7, "text-anchor": "end", class: "label" }, label(row)));
    let x = left;
    for (const part of PARTS) {
      const w = ((width - left - 8) * row[part]) / most;
      if (w > 0) chart.append(svg("rect", { x, y, width: w, height: barHeight, class: `part ${part}`, "data-group": row.group, "data-part": part, "data-count": row[part] }));
      x += w;
    }
  });
  return chart;
}
