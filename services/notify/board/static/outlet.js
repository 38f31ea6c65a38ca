// An outlet's file (网点档案): its master data and status, recent sales, visits and visit plans
// at it, and its alerts.

import { get } from "./api.js";
import { formatNumber, formatTime, h } from "./dom.js";
import { dealerLabel, t } from "./i18n.js";
import { plans, visits } from "./dealer.js";
import { alertList, backToBoard, section, table, viewLink } from "./panels.js";

export async function showOutlet(view, dealerId, outletId) {
  view.replaceChildren(backToBoard(), h("h2", { "data-testid": "outlet-title" }, `${t("outletFile")}: ${outletId}`));
  const file = await get(`/v1/dealers/${encodeURIComponent(dealerId)}/outlets/${encodeURIComponent(outletId)}`)
    .catch((error) => ({ error: error.message }));
  if (file.error) {
    view.append(h("p", { class: "error" }, file.error));
    return;
  }
  const o = file.outlet;
  const fields = [["name", o.name], ["dealer", viewLink({ dealer: dealerId }, dealerLabel(dealerId, file.dealer?.name))],
    ["level", t(o.level || "")], ["region", o.region], ["status", t(o.status === "open" ? "outletOpen" : "closed")], ["registered", formatTime(o.registered_at)],
    ["lastSale", formatTime(o.last_sale_at)], ["netSales30d", formatNumber(o.net_sales_30d)]];
  view.append(
    section("outlet", h("dl", { class: "measures" }, fields.flatMap(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value || "–")])), "outlet-master"),
    section("alerts", alertList(file.alerts)),
    section("sales", table(["date", "quantity", "amount"], file.sales.map((s) => h("tr", {},
      h("td", {}, formatTime(s.occurred_at)), h("td", {}, s.quantity), h("td", {}, formatNumber(s.amount))))), "outlet-sales"),
    section("visitPlans", plans(file.visit_plans), "plans"),
    section("visits", visits(file.visits)),
  );
}
