// The live alert stream (Server-Sent Events). The browser reconnects by itself and sends the
// last event id it saw, so nothing is missed; if it gives up (the server answered with an
// error), we reconnect ourselves from that id. `onState` hears live / connecting / disconnected.

export function follow(params, lastId, onChange, onState) {
  let source = null;
  let seen = lastId;
  let retry = null;

  function connect() {
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v));
    if (seen !== null && seen !== undefined) query.set("last_event_id", seen);
    source = new EventSource(`/v1/alerts/stream?${query}`);
    onState("connecting");
    source.onopen = () => onState("live");
    source.addEventListener("alert", (event) => {
      seen = Number(event.lastEventId);
      onChange(JSON.parse(event.data));
    });
    source.onerror = () => {
      onState("disconnected");
      if (source.readyState === EventSource.CLOSED) {
        clearTimeout(retry);
        retry = setTimeout(connect, 2000);
      }
    };
  }

  connect();
  return () => {
    clearTimeout(retry);
    source?.close();
  };
}
