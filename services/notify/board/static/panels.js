// The pieces the file views share: a titled panel, a table, an alert list, a status badge, and
// links between the views (the URL says which view: every view can be shared as a link).

import { formatTime, h } from "./dom.js";
import { summaryOf, t } from "./i18n.js";

export function section(title, content, name = title) {
  return h("section", { class: `panel ${name}`, "data-testid": name }, h("h3", {}, t(title)), content);
}

export function table(headers, rows) {
  if (!rows.length) return h("p", { class: "empty" }, t("none"));
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((k) => h("th", {}, t(k))))), h("tbody", {}, rows));
}

export function alertList(alerts) {
  return table(["severity", "status", "rule", "summary", "firstSeen"], alerts.map((a) => h("tr", {},
    h("td", {}, h("span", { class: `severity ${a.severity}` }, t(a.severity))),
    h("td", {}, h("span", { class: `badge status-${a.status}` }, t(a.status))),
    h("td", {}, a.rule_id), h("td", { class: "summary" }, summaryOf(a)), h("td", {}, formatTime(a.first_seen_at)))));
}

export function planStatus(status) {
  return h("span", { class: `badge plan-${status}`, "data-status": status }, t(status));
}

// a link to another view, keeping the language
export function viewLink(params, text) {
  const query = new URLSearchParams(params);
  const lang = new URLSearchParams(location.search).get("lang");
  if (lang) query.set("lang", lang);
  return h("a", { href: `/?${query}` }, text);
}

export function backToBoard() {
  return h("p", {}, viewLink({}, t("back")));
}
