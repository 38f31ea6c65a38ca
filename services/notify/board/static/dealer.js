// A dealer's file: weekly sales against baseline and target, alerts, promotions with their
// evaluation, visits, and the measures the rules keep.

import { get } from "./api.js";
import { weeklyChart } from "./chart.js";
import { formatNumber, formatTime, h } from "./dom.js";
import { t } from "./i18n.js";

export async function showDealer(view, dealerId) {
  const back = new URLSearchParams(location.search);
  back.delete("dealer");
  view.replaceChildren(h("p", {}, h("a", { href: `/${back.size ? `?${back}` : ""}`, class: "back" }, t("back"))),
    h("h2", { "data-testid": "dealer-title" }, `${t("dealerFile")}: ${dealerId}`));
  const id = encodeURIComponent(dealerId);
  const [file, sales] = await Promise.all([
    get(`/v1/dealers/${id}`).catch((error) => ({ error: error.message })),
    get(`/v1/dealers/${id}/weekly-sales`, { weeks: 12 }),
  ]);
  view.append(section("weeklySales", weeklyChart(sales), "chart"));
  if (file.error) {
    view.append(h("p", { class: "error" }, file.error));
    return;
  }
  view.append(
    section("openAlerts", alertList(file.open_alerts)),
    section("promotions", promotions(file.promotions || [])),
    section("visits", visits(file.visits || [])),
    section("pastAlerts", alertList(file.past_alerts)),
    section("measures", measures(file)),
  );
}

function section(title, content, name = title) {
  return h("section", { class: `panel ${name}`, "data-testid": name }, h("h3", {}, t(title)), content);
}

function table(headers, rows) {
  if (!rows.length) return h("p", { class: "empty" }, t("none"));
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((k) => h("th", {}, t(k))))), h("tbody", {}, rows));
}

function alertList(alerts) {
  return table(["severity", "status", "rule", "summary", "firstSeen"], alerts.map((a) => h("tr", {},
    h("td", {}, h("span", { class: `severity ${a.severity}` }, t(a.severity))),
    h("td", {}, h("span", { class: `badge status-${a.status}` }, t(a.status))),
    h("td", {}, a.rule_id), h("td", { class: "summary" }, a.summary), h("td", {}, formatTime(a.first_seen_at)))));
}

function promotions(items) {
  return table(["promotions", "owner", "period", "budget", "approvedBy", "spend", "evaluation"], items.map((p) => {
    const planned = (p.events || []).find((e) => e.type === "promotion.planned") || {};
    const spend = p.spend ?? (p.events || []).filter((e) => e.type === "promotion.spend").reduce((sum, e) => sum + Number(e.amount), 0);
    const approved = p.approved_by ?? (p.events || []).find((e) => e.type === "promotion.approved")?.approved_by;
    const evaluation = p.evaluation;
    return h("tr", { "data-promotion": p.promotion_id },
      h("td", {}, p.promotion_id), h("td", {}, p.owner ?? planned.owner ?? ""),
      h("td", {}, `${p.starts_on ?? planned.starts_on ?? ""} – ${p.ends_on ?? planned.ends_on ?? ""}`),
      h("td", {}, formatNumber(p.budget ?? planned.budget)), h("td", {}, approved || t("notApproved")),
      h("td", {}, formatNumber(spend)),
      h("td", { class: "evaluation" }, evaluation
        ? h("span", { class: `verdict ${evaluation.verdict}` }, t(evaluation.verdict), evaluation.ratio !== null ? ` (${t("ratio")} ${formatNumber(evaluation.ratio)})` : "")
        : ""));
  }));
}

function visits(items) {
  return table(["date", "kind", "role", "visitor"], items.map((v) => h("tr", {},
    h("td", {}, formatTime(v.occurred_at)), h("td", {}, t(v.kind)), h("td", {}, v.role), h("td", {}, v.visitor_id))));
}

function measures(file) {
  if (!file.measures) return h("p", { class: "empty" }, t("unavailable", { reason: file.measures_error || "" }));
  return h("dl", { class: "measures" }, Object.entries(file.measures).flatMap(([name, value]) =>
    [h("dt", {}, name), h("dd", {}, typeof value === "number" ? formatNumber(value) : String(value ?? "–"))]));
}
