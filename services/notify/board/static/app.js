// Entry point: the header (who you are, API key, language, connection), then the view the URL
// names: the board, a dealer's file (?dealer=ID), an outlet's file (?dealer=ID&outlet=ID) or the
// visit-plan report (?report=visit-plans), so that every view can be shared as a link.

import { actor, apiKey, get, setActor, setApiKey } from "./api.js";
import { showBoard } from "./board.js";
import { showDealer } from "./dealer.js";
import { language, switchLanguage, t } from "./i18n.js";
import { showOutlet } from "./outlet.js";
import { showPolicy } from "./policy.js";
import { showPromotions } from "./promotions.js";
import { showReport } from "./report.js";
import { showSupport } from "./support.js";
import { showWarnings } from "./warnings.js";

function setConnection(state) {
  const badge = document.getElementById("connection");
  badge.dataset.state = state;
  badge.textContent = t(state);
}

async function start() {
  document.documentElement.lang = language() === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  const you = document.getElementById("actor");
  you.value = actor();
  you.addEventListener("change", () => setActor(you.value));
  const key = document.getElementById("api-key");
  key.value = apiKey();
  key.addEventListener("change", () => {
    setApiKey(key.value);
    location.reload(); // every view starts again with the key
  });
  document.getElementById("language").addEventListener("click", switchLanguage);
  const config = await get("/board/config.json").catch(() => ({ auth_required: true }));
  document.getElementById("key-field").hidden = !config.auth_required;

  const view = document.getElementById("view");
  if (config.auth_required && !apiKey()) {
    view.replaceChildren(Object.assign(document.createElement("p"), { className: "notice", id: "key-wanted", textContent: t("keyToRead") }));
    setConnection("disconnected");
    key.focus();
    return;
  }
  const params = new URLSearchParams(location.search);
  const dealer = params.get("dealer");
  if (dealer || params.get("report")) {
    setConnection("live");
    document.getElementById("connection").hidden = true; // a file is read once, not followed live
    if (params.get("report") === "warnings") await showWarnings(view);
    else if (params.get("report") === "promotions") await showPromotions(view);
    else if (params.get("report") === "support") await showSupport(view);
    else if (params.get("report") === "policy") await showPolicy(view);
    else if (params.get("report")) await showReport(view);
    else if (params.get("outlet")) await showOutlet(view, dealer, params.get("outlet"));
    else await showDealer(view, dealer);
  } else if (config.lifecycle) {
    showBoard(view, setConnection, { ...config.lifecycle, causes: config.causes || [] });
  } else {
    setConnection("disconnected"); // notify did not answer: reload when it is back
  }
}

start();
