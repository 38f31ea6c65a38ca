// A dealer's file (经销商档案): master data, weekly sales against baseline and target, alerts,
// outlets, visit plans with their status, promotions with expected and actual effect and their
// evaluation, visits, and the measures the rules keep.

import { get } from "./api.js";
import { weeklyChart } from "./chart.js";
import { formatNumber, formatTime, h } from "./dom.js";
import { dealerLabel, t } from "./i18n.js";
import { alertList, backToBoard, planStatus, section, table, viewLink } from "./panels.js";
import { pastTable } from "./support.js";

export async function showDealer(view, dealerId) {
  const title = h("h2", { "data-testid": "dealer-title" }, `${t("dealerFile")}: ${dealerId}`);
  view.replaceChildren(backToBoard(), title);
  const id = encodeURIComponent(dealerId);
  const [file, sales] = await Promise.all([
    get(`/v1/dealers/${id}`).catch((error) => ({ error: error.message })),
    get(`/v1/dealers/${id}/weekly-sales`, { weeks: 12 }),
  ]);
  if (file.master?.name) title.textContent = `${t("dealerFile")}: ${dealerLabel(dealerId, file.master.name)}`;
  view.append(section("weeklySales", weeklyChart(sales), "chart"));
  if (file.error) {
    view.append(h("p", { class: "error" }, file.error));
    return;
  }
  view.append(
    section("masterData", master(file.master), "master"),
    section("openAlerts", alertList(file.open_alerts)),
    section("outlets", [outlets(dealerId, file.outlets || []), shownOf(file.outlets, file.outlets_total)]),
    section("visitPlans", [plans(file.visit_plans || []), shownOf(file.visit_plans, file.visit_plans_total)], "plans"),
    section("promotions", promotions(file.promotions || [])),
    section("visits", visits(file.visits || [])),
    section("feedback", feedback(file.feedback || []), "feedback"),
    section("incentives", incentives(file.incentives || []), "incentives"),
    section("support", support(file.support || { running: null, past: [] }), "support"),
    section("pastAlerts", alertList(file.past_alerts)),
    section("measures", measures(file)),
  );
}

// each rebate or award program: this period so far (tier, accrued, what the next tier needs, days
// left, the gate) and its past periods' results
function incentives(programs) {
  const row = (program, period, values, past) => h("tr", { "data-program": program, "data-period": period, class: past ? "past" : "current" },
    h("td", {}, program), h("td", {}, period), h("td", { "data-field": "sales" }, formatNumber(values.sales)),
    h("td", { "data-field": "rate" }, `${formatNumber(values.rate * 100)}%`), h("td", { "data-field": "accrued" }, formatNumber(values.accrued)),
    h("td", { "data-field": "next_gap" }, formatNumber(values.next_gap)), h("td", { "data-field": "days_left" }, past ? "–" : values.days_left),
    h("td", {}, formatNumber(values.gate_target)), h("td", {}, formatNumber(values.projected)));
  return table(["program", "period", "sales", "rate", "accrued", "nextGap", "daysLeft", "gateTarget", "projected"],
    programs.flatMap((p) => [row(p.program_id, p.period, p, false), ...p.past.map((r) => row(p.program_id, r.period, r, true))]));
}

// support running now, and past support with its evaluation and the alerts it resolved
function support(kept) {
  const running = kept.running
    ? h("p", { "data-testid": "support-running-now" }, `${t("supportRunning")}: ${kept.running.support_id} (${t(kept.running.support_kind)}), ${t("daysLeft")} ${kept.running.days_left}`)
    : null;
  return [running, pastTable(kept.past)];
}

// what the dealer said, open items first, with how long they waited or how long the answer took
function feedback(items) {
  return table(["received", "channel", "topic", "said", "status", "answer", "feedbackDays"], items.map((f) => h("tr", { "data-feedback": f.feedback_id },
    h("td", {}, formatTime(f.received_at)), h("td", {}, t(f.channel)), h("td", {}, f.topic), h("td", {}, f.text),
    h("td", {}, h("span", { class: `badge feedback-${f.status}` }, t(f.status === "open" ? "unanswered" : "answered"))),
    h("td", {}, f.answer ? `${f.answer} (${f.answered_by})` : ""),
    h("td", {}, formatNumber(f.status === "open" ? f.waiting_days : f.answer_days)))));
}

// a dealer with thousands of outlets or plans: the file shows the first page and says so
function shownOf(items, total) {
  return total > (items || []).length ? h("p", { class: "empty" }, t("shownOf", { shown: items.length, total })) : "";
}

function master(data) {
  if (!data?.registered && !data?.name) return h("p", { class: "empty" }, t("notRegistered"));
  const fields = [["name", data.name], ["tier", data.tier], ["region", data.region], ["contact", data.contact_name],
    ["phone", data.phone], ["registered", formatTime(data.registered_at)]];
  return h("dl", { class: "measures" }, fields.flatMap(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value || "–")]));
}

function outlets(dealerId, items) {
  return table(["outlet", "name", "level", "status", "lastSale", "netSales30d"], items.map((o) => h("tr", { "data-outlet": o.outlet_id },
    h("td", {}, viewLink({ dealer: dealerId, outlet: o.outlet_id }, o.outlet_id)), h("td", {}, o.name || ""),
    h("td", {}, t(o.level || "")), h("td", {}, t(o.status === "open" ? "outletOpen" : "closed")), h("td", {}, formatTime(o.last_sale_at)),
    h("td", {}, formatNumber(o.net_sales_30d)))));
}

export function plans(items) {
  return table(["plan", "plannedFor", "kind", "outlet", "visitor", "status", "visitedAt"], items.map((p) => h("tr", { "data-plan": p.plan_id },
    h("td", {}, p.plan_id), h("td", {}, p.planned_for), h("td", {}, t(p.kind)), h("td", {}, p.outlet_id || ""),
    h("td", {}, p.visitor_id), h("td", {}, planStatus(p.status)), h("td", {}, formatTime(p.visited_at)))));
}

function promotions(items) {
  const headers = ["promotions", "owner", "period", "budget", "approvedBy", "spend", "expected", "actual", "evaluation"];
  return table(headers, items.map((p) => {
    const planned = (p.events || []).find((e) => e.type === "promotion.planned") || {};
    const spend = p.spend ?? (p.events || []).filter((e) => e.type === "promotion.spend").reduce((sum, e) => sum + Number(e.amount), 0);
    const approved = p.approved_by ?? (p.events || []).find((e) => e.type === "promotion.approved")?.approved_by;
    const evaluation = p.evaluation;
    const expected = evaluation?.expected_sales ?? planned.expected_sales;
    const met = evaluation?.expected_met;
    return h("tr", { "data-promotion": p.promotion_id },
      h("td", {}, p.promotion_id), h("td", {}, p.owner ?? planned.owner ?? ""),
      h("td", {}, `${p.starts_on ?? planned.starts_on ?? ""} – ${p.ends_on ?? planned.ends_on ?? ""}`),
      h("td", {}, formatNumber(p.budget ?? planned.budget)), h("td", {}, approved || t("notApproved")),
      h("td", {}, formatNumber(spend)), h("td", { class: "expected" }, formatNumber(expected)),
      h("td", { class: "actual" }, formatNumber(evaluation?.sales_during),
        met === true || met === false ? h("span", { class: `verdict ${met ? "effective" : "ineffective"}` }, ` ${t(met ? "met" : "notMet")}`) : ""),
      h("td", { class: "evaluation" }, evaluation
        ? h("span", { class: `verdict ${evaluation.verdict}` }, t(evaluation.verdict), evaluation.ratio !== null ? ` (${t("ratio")} ${formatNumber(evaluation.ratio)})` : "")
        : ""));
  }));
}

export function visits(items) {
  return table(["date", "kind", "role", "visitor"], items.map((v) => h("tr", {},
    h("td", {}, formatTime(v.occurred_at)), h("td", {}, t(v.kind)), h("td", {}, v.role), h("td", {}, v.visitor_id))));
}

function measures(file) {
  if (!file.measures) return h("p", { class: "empty" }, t("unavailable", { reason: file.measures_error || "" }));
  return h("dl", { class: "measures" }, Object.entries(file.measures).flatMap(([name, value]) =>
    [h("dt", {}, name), h("dd", {}, typeof value === "number" ? formatNumber(value) : String(value ?? "–"))]));
}
