// The live alert stream (Server-Sent Events), read with fetch so that it carries the API key
// (EventSource cannot send one). It reconnects by itself from the last event id it saw, so
// nothing is missed; a client too far behind is told to list again (`onReset`). `onState` hears
// live / connecting / disconnected.

import { withKey } from "./api.js";

export function follow(params, lastId, onChange, onState, onReset) {
  let seen = lastId;
  let stopped = false;
  let controller = null;
  let retry = null;

  async function connect() {
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v));
    if (seen !== null && seen !== undefined) query.set("last_event_id", seen);
    controller = new AbortController();
    onState("connecting");
    try {
      const response = await fetch(`/v1/alerts/stream?${query}`, {
        headers: withKey({ Accept: "text/event-stream" }), signal: controller.signal, cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      onState("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (stopped) return;
    }
    if (stopped) return;
    onState("disconnected");
    retry = setTimeout(connect, 2000);
  }

  function dispatch(block) {
    let id = null;
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (event === "alert" && data.length) {
      seen = Number(id);
      onChange(JSON.parse(data.join("\n")));
    } else if (event === "reset") {
      seen = Number(id);
      onReset?.();
    }
  }

  connect();
  return () => {
    stopped = true;
    clearTimeout(retry);
    controller?.abort();
  };
}
