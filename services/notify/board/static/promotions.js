// The Promotions view (促销问责): promotions ended in the period by owner, their budget, spend, net
// effect and ratio, how many were ineffective, below expectation, over budget or spent without
// approval; each owner's promotions listed with their evaluation (GET /v1/reports/promotions).

import { get } from "./api.js";
import { formatNumber, h } from "./dom.js";
import { t } from "./i18n.js";
import { backToBoard, section, table } from "./panels.js";

const COLUMNS = ["ended", "budget", "spend", "net_effect", "ratio", "ineffective", "below_expectation", "over_budget", "unapproved_spend"];

export async function showPromotions(view) {
  view.replaceChildren(backToBoard(), h("h2", { "data-testid": "promotions-title" }, t("promotionsReport")));
  const report = await get("/v1/reports/promotions", { group_by: "owner" }).catch((error) => ({ error: error.message }));
  if (report.error) {
    view.append(h("p", { class: "error" }, report.error));
    return;
  }
  view.append(
    section("promotionsReport", table(["owner", ...COLUMNS], report.items.map((row) => h("tr", { "data-owner": row.group ?? "" },
      h("td", {}, row.group ?? "–"), ...COLUMNS.map((column) => h("td", { "data-field": column }, formatNumber(row[column])))))), "promotions-table"),
    ...report.items.map((row) => section("promotions", table(["dealer", "promotion", "ends", "sales", "before", "spend", "ratio", "verdict"],
      row.promotions.map((p) => h("tr", { "data-promotion": p.promotion_id },
        h("td", {}, p.dealer_id), h("td", {}, p.promotion_id), h("td", {}, p.ends_on), h("td", {}, formatNumber(p.sales_during)),
        h("td", {}, formatNumber(p.sales_before)), h("td", {}, formatNumber(p.spend)), h("td", {}, formatNumber(p.ratio)),
        h("td", {}, t(p.verdict))))), `owner-${row.group ?? ""}`)).map((panel, i) => {
      panel.querySelector("h3").textContent = `${t("owner")}: ${report.items[i].group ?? "–"}`; // each owner's own promotions
      return panel;
    }),
  );
}
