// The Support view (人员车辆支持): where to send support next (GET /v1/support/priorities: the
// score, its parts and the open alerts behind it, each dealer's last support), a form that sends
// support (POST /v1/support: support.dispatched through ingest, an operator key), the support
// running now with its days left, and past support with its evaluation and the alerts it resolved.

import { actor, get, post } from "./api.js";
import { formatNumber, formatTime, h } from "./dom.js";
import { t } from "./i18n.js";
import { backToBoard, section, table, viewLink } from "./panels.js";

const KINDS = ["rep", "supervisor", "promoter", "vehicle"];

export async function showSupport(view) {
  view.replaceChildren(backToBoard(), h("h2", { "data-testid": "support-title" }, t("supportView")));
  const region = new URLSearchParams(location.search).get("region") || "";
  const [ranking, past] = await Promise.all([
    get("/v1/support/priorities", { region, limit: 50 }),
    get("/v1/support/evaluations", { limit: 50 }),
  ]).catch((error) => [{ error: error.message }, null]);
  if (ranking.error) {
    view.append(h("p", { class: "error" }, ranking.error));
    return;
  }
  const form = h("div", { class: "support-form", "data-testid": "support-form" });
  view.append(
    section("supportPriorities", table(["dealer", "region", "score", "targetGap", "baselineGap", "alertWeight", "openAlerts", "lastSupport", "actions"],
      ranking.ranked.map((row) => h("tr", { "data-dealer": row.dealer_id },
        h("td", {}, viewLink({ dealer: row.dealer_id }, row.dealer_name || row.dealer_id)), h("td", {}, row.region ?? "–"),
        h("td", { "data-field": "score" }, formatNumber(row.score)), h("td", {}, formatNumber(row.target_gap)),
        h("td", {}, formatNumber(row.baseline_gap)), h("td", {}, formatNumber(row.alert_weight)),
        h("td", { class: "reasons" }, row.open_alerts.map((a) => h("span", { class: `severity ${a.severity}` }, a.rule_id))),
        h("td", {}, lastSupport(row.last_support)),
        h("td", {}, h("button", { type: "button", "data-action": "send", onclick: () => sendForm(form, row) }, t("sendSupport")))))), "support-ranked"),
    form,
    section("supportRunning", table(["dealer", "support", "kind", "ends", "daysLeft"], ranking.running.map((row) => h("tr", { "data-dealer": row.dealer_id },
      h("td", {}, viewLink({ dealer: row.dealer_id }, row.dealer_name || row.dealer_id)), h("td", {}, row.running.support_id),
      h("td", {}, t(row.running.support_kind)), h("td", {}, row.running.ends_on), h("td", { "data-field": "days_left" }, row.running.days_left)))), "support-running"),
    section("supportPast", pastTable(past?.items || []), "support-past"),
  );
}

function lastSupport(evaluation) {
  if (!evaluation) return "–";
  return `${evaluation.support_id}: ${t(evaluation.verdict)} (${formatNumber(evaluation.ratio)})`;
}

export function pastTable(items) {
  return table(["dealer", "support", "kind", "ends", "sales", "before", "netCost", "ratio", "verdict", "alertsResolved"],
    items.map((e) => h("tr", { "data-support": e.support_id },
      h("td", {}, e.dealer_id), h("td", {}, e.support_id), h("td", {}, t(e.support_kind)), h("td", {}, formatTime(e.ended_at)),
      h("td", {}, formatNumber(e.sales_during)), h("td", {}, formatNumber(e.sales_before)), h("td", {}, formatNumber(e.net_cost)),
      h("td", {}, formatNumber(e.ratio)), h("td", { "data-field": "verdict" }, t(e.verdict)),
      h("td", { "data-field": "resolved" }, `${e.alerts_resolved_by_end.length} / ${e.alerts_open_at_start.length}`,
        e.alerts_resolved_by_end.map((a) => h("span", { class: `severity ${a.severity}` }, a.rule_id))))));
}

function sendForm(form, row) {
  const today = new Date().toISOString().slice(0, 10);
  const field = (name, input) => h("label", {}, h("span", {}, t(name)), input);
  const kind = h("select", { name: "kind" }, KINDS.map((k) => h("option", { value: k }, t(k))));
  const inputs = {
    support_id: h("input", { name: "support_id", value: `S-${row.dealer_id}-${Date.now().toString(36)}`, size: 24 }),
    starts_on: h("input", { name: "starts_on", type: "date", value: today }),
    ends_on: h("input", { name: "ends_on", type: "date", value: today }),
    cost: h("input", { name: "cost", type: "number", min: 0, step: "0.01", value: 0 }),
    dealer_share: h("input", { name: "dealer_share", type: "number", min: 0, max: 1, step: "0.01", value: 0 }),
    reason: h("input", { name: "reason", value: row.open_alerts.map((a) => a.alert_id).join(" ").slice(0, 500), size: 40 }),
  };
  const message = h("p", { class: "form-message", "data-testid": "support-message" });
  const submit = async () => {
    if (!actor()) {
      message.textContent = t("whoFirst");
      return;
    }
    const body = { dealer_id: row.dealer_id, kind: kind.value, owner: actor() };
    for (const [name, input] of Object.entries(inputs)) if (input.value !== "") body[name] = input.value;
    try {
      await post("/v1/support", body);
      message.textContent = t("supportSent");
      message.dataset.state = "sent";
    } catch (error) {
      message.textContent = error.status === 401 || error.status === 403 ? t("keyNeeded") : error.message;
      message.dataset.state = "refused";
    }
  };
  form.replaceChildren(h("h3", {}, `${t("sendSupport")}: ${row.dealer_name || row.dealer_id}`),
    field("support", inputs.support_id), field("kind", kind), field("starts", inputs.starts_on), field("ends", inputs.ends_on),
    field("cost", inputs.cost), field("dealerShare", inputs.dealer_share), field("reason", inputs.reason),
    h("button", { type: "button", "data-action": "submit-support", onclick: submit }, t("submit")), message);
}
