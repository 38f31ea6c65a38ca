// Acknowledge, resolve, assign, add a finding and silence, in one dialog. Every action is recorded with the person
// named at the top of the page; the API decides whether it is allowed. `done` gets the API's
// answer (the alert after an acknowledge or resolve; a silence reaches the list by the stream).

import { actor, post } from "./api.js";
import { h } from "./dom.js";
import { language, t } from "./i18n.js";

const DURATIONS = [[1, "hours"], [4, "hours"], [24, "hours"], [7, "days"]];

// action: one of the lifecycle's actions (its API path and the text it takes); none for a silence
export function openAction(kind, alert, done, action = null) {
  const dialog = document.getElementById("action-dialog");
  const error = h("p", { class: "error", role: "alert" });
  const fields = action ? [inputField(action), choiceField(action), textField(action.text, action.text_required)] : silenceFields(alert);
  const form = h("form", { method: "dialog" },
    h("h2", {}, `${t(kind)}: ${alert.rule_id} · ${alert.dealer_id}`),
    h("p", { class: "summary" }, alert.summary),
    ...fields,
    error,
    h("menu", {},
      h("button", { type: "button", value: "cancel", onclick: () => dialog.close() }, t("cancel")),
      h("button", { type: "submit", class: "primary", name: "confirm" }, t("submit"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!actor()) {
      error.textContent = t("whoFirst");
      return;
    }
    try {
      const answer = await send(action, alert, new FormData(form));
      dialog.close();
      done(answer);
    } catch (failure) {
      error.textContent = [401, 403].includes(failure.status) ? t("keyNeeded") : failure.message;
    }
  });
  dialog.replaceChildren(form);
  dialog.showModal();
}

// assign: who it goes to
function inputField(action) {
  return action.input ? h("label", {}, t(action.input), h("input", { name: action.input, required: true, size: 16 })) : null;
}

// resolve: the cause from notify's list, in the reader's language
function choiceField(action) {
  if (!action.choice) return null;
  return h("label", {}, t(action.choice), h("select", { name: action.choice, required: true },
    h("option", { value: "" }, "—"),
    (action.choices || []).map((c) => h("option", { value: c.id }, language() === "zh" ? c.zh : c.en))));
}

function textField(name, required) {
  return h("label", {}, t(name), h("textarea", { name, rows: 3, required }));
}

function silenceFields(alert) {
  const region = alert.labels?.region;
  const matcher = (name, value, checked) => value && h("label", { class: "check" },
    h("input", { type: "checkbox", name: `match.${name}`, value, checked }), `${t(name === "rule_id" ? "rule" : name === "dealer_id" ? "dealer" : name)}: ${value}`);
  return [
    h("fieldset", {}, h("legend", {}, t("matchers")),
      matcher("rule_id", alert.rule_id, true), matcher("dealer_id", alert.dealer_id, true),
      matcher("region", region, false), matcher("severity", alert.severity, false)),
    h("label", {}, t("duration"), h("select", { name: "duration" },
      DURATIONS.map(([n, unit]) => h("option", { value: n * (unit === "days" ? 24 : 1) }, `${n} ${t(unit)}`)))),
    textField("comment", true),
  ];
}

async function send(action, alert, data) {
  if (action) {
    const path = `/v1/alerts/${encodeURIComponent(alert.alert_id)}/${action.path}`;
    const body = { by: actor(), [action.text]: data.get(action.text) || null };
    if (action.choice) body[action.choice] = data.get(action.choice);
    if (action.input) body[action.input] = data.get(action.input);
    return post(path, body);
  }
  const matchers = {};
  for (const [name, value] of data.entries()) if (name.startsWith("match.")) matchers[name.slice(6)] = value;
  const hours = Number(data.get("duration"));
  return post("/v1/silences", {
    matchers, created_by: actor(), comment: data.get("comment"),
    ends_at: new Date(Date.now() + hours * 3600 * 1000).toISOString(),
  });
}
