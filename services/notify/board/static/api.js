// notify's public API, as the page uses it. In production mode every request carries the API key
// the user typed (kept for this browser tab only): a viewer key reads, an operator key also acts.
// Actions carry the acting person.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function actor() {
  return (localStorage.getItem("dealerwatch.actor") || "").trim();
}

export function setActor(name) {
  localStorage.setItem("dealerwatch.actor", name.trim());
}

export function apiKey() {
  return sessionStorage.getItem("dealerwatch.key") || "";
}

export function setApiKey(key) {
  sessionStorage.setItem("dealerwatch.key", key.trim());
}

export function withKey(headers) {
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  return headers;
}

export async function get(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const response = await fetch(`${path}${query.size ? `?${query}` : ""}`, { headers: withKey({ Accept: "application/json" }) });
  return answer(response);
}

export async function post(path, body) {
  const headers = withKey({ "Content-Type": "application/json", Accept: "application/json" });
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  return answer(response);
}

async function answer(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
    throw new ApiError(response.status, detail || `HTTP ${response.status}`);
  }
  return body;
}
