// The Policy view (预警规则): the live warning policy, read-only (GET /v1/policy/live, a viewer
// key): each rule's condition, thresholds, severity, kind and summary in the reader's language
// with how many alerts it has open; the version and when it was loaded; the reload history
// (accepted and refused, with the errors); the diff of the last change on the archive's last 90 days.

import { get } from "./api.js";
import { formatNumber, formatTime, h } from "./dom.js";
import { language, t } from "./i18n.js";
import { backToBoard, section, table } from "./panels.js";

export async function showPolicy(view) {
  view.replaceChildren(backToBoard(), h("h2", { "data-testid": "policy-title" }, t("policyView")));
  const policy = await get("/v1/policy/live").catch((error) => ({ error: error.message }));
  if (policy.error) {
    view.append(h("p", { class: "error" }, policy.error));
    return;
  }
  view.append(
    h("p", { "data-testid": "policy-version" }, `${t("version")} ${policy.version} · ${t("loadedAt")} ${formatTime(policy.loaded_at)} · ${policy.source}`),
    section("policyRules", table(["rule", "severity", "kind", "condition", "thresholds", "summary", "openAlerts"],
      policy.rules.map((rule) => h("tr", { "data-rule": rule.rule_id },
        h("td", {}, h("strong", {}, rule.rule_id), h("div", { class: "description" }, rule.description)),
        h("td", {}, h("span", { class: `severity ${rule.severity}` }, t(rule.severity))),
        h("td", {}, `${t(rule.kind)} · ${rule.scope}${rule.trigger.length ? ` (${rule.trigger.join(", ")})` : ""}`),
        h("td", {}, h("code", {}, rule.when)),
        h("td", { "data-field": "thresholds" }, rule.thresholds.map(formatNumber).join(", ")),
        h("td", { class: "summary" }, rule.summaries[language()] || rule.summaries.en || Object.values(rule.summaries)[0]),
        h("td", { "data-field": "open" }, String(rule.open_alerts))))), "policy-rules"),
    section("reloadHistory", table(["at", "outcome", "versions", "reason", "errors"],
      policy.reloads.map((entry) => h("tr", { "data-outcome": entry.outcome },
        h("td", {}, formatTime(entry.at)), h("td", {}, t(entry.outcome)),
        h("td", {}, `${entry.from} → ${entry.to ?? "–"}`), h("td", {}, entry.reason),
        h("td", { class: "errors" }, entry.errors.map((line) => h("div", {}, line)))))), "policy-reloads"),
    section("lastDiff", lastDiff(policy.last_diff), "policy-diff"),
  );
}

function lastDiff(last) {
  if (!last) return h("p", { class: "empty" }, t("noChangeYet"));
  const found = last.diff;
  const alerts = found.alerts;
  return h("div", {},
    h("p", { "data-testid": "diff-summary" }, t("diffSummary", {
      from: found.old.version, to: found.new.version, days: found.archive?.days ?? 90, events: formatNumber(found.events),
      before: alerts.old, after: alerts.new, onlyOld: alerts.only_old, onlyNew: alerts.only_new, moved: alerts.moved,
    })),
    table(["rule", "onlyBefore", "onlyAfter", "otherTimes"], found.rules.map((rule) => h("tr", { "data-rule": rule.rule_id },
      h("td", {}, rule.rule_id), h("td", { "data-field": "only_old" }, String(rule.only_old)),
      h("td", { "data-field": "only_new" }, String(rule.only_new)), h("td", {}, String(rule.moved))))));
}
