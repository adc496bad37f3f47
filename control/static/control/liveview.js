// The admin's live view (control/liveview_views.py): a centrifuge-js subscription to the channel with
// the tokens the page was rendered with (fresh ones from tokenUrl when they expire), and a poll of
// eventsUrl every second for joins, leaves and the presence count. Everything from the channel is
// put on the page as text (textContent), never as HTML.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("live-config").textContent);
  const KEEP = 200; // rows kept per table
  const status = document.getElementById("live-status");
  const csrf = (document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/) || [])[1] || "";

  function setStatus(text, ok) {
    status.textContent = text;
    status.className = ok ? "ok" : "bad";
  }

  function addRow(tableId, cells) {
    const body = document.querySelector("#" + tableId + " tbody");
    const row = document.createElement("tr");
    cells.forEach(function (cell) {
      const td = document.createElement("td");
      if (cell.code) {
        td.className = "payload";
        const code = document.createElement("code");
        code.textContent = cell.code;
        td.appendChild(code);
      } else {
        td.textContent = cell;
      }
      row.appendChild(td);
    });
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > KEEP) body.deleteRow(body.rows.length - 1);
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour12: false }) + "." + String(ms % 1000).padStart(3, "0");
  }

  async function freshToken(kind) {
    const body = new URLSearchParams({ channel: config.channel, kind: kind });
    const response = await fetch(config.tokenUrl, {
      method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrf },
    });
    if (response.status === 403) throw new Centrifuge.UnauthorizedError("signed out of the admin");
    if (!response.ok) throw new Error("token refresh failed: HTTP " + response.status);
    return (await response.json()).token;
  }

  const centrifuge = new Centrifuge(config.websocketUrl, {
    token: config.tokens.connection,
    getToken: function () { return freshToken("connection"); },
  });
  centrifuge.on("connecting", function (ctx) { setStatus("connecting… (" + ctx.reason + ")", false); });
  centrifuge.on("disconnected", function (ctx) { setStatus("disconnected: " + ctx.reason + " (" + ctx.code + ")", false); });
  centrifuge.on("error", function (ctx) {
    const message = ctx.error && ctx.error.message;
    if (ctx.type === "transport") {
      // A browser refused by Centrifugo's Origin check sees only a closed WebSocket: say where to look.
      setStatus("cannot reach Centrifugo at " + config.websocketUrl + " (" + message + "); see README, Live view", false);
    } else {
      setStatus("error: " + message + " (retrying)", false); // e.g. an expired token: getToken renews it
    }
  });

  const sub = centrifuge.newSubscription(config.channel, {
    token: config.tokens.subscription,
    getToken: function () { return freshToken("subscription"); },
  });
  sub.on("subscribed", function () { setStatus("live", true); });
  sub.on("subscribing", function (ctx) { setStatus("subscribing… (" + ctx.reason + ")", false); });
  sub.on("unsubscribed", function (ctx) { setStatus("unsubscribed: " + ctx.reason + " (" + ctx.code + ")", false); });
  sub.on("error", function (ctx) { setStatus("subscription error: " + (ctx.error && ctx.error.message), false); });
  sub.on("publication", function (ctx) {
    const data = ctx.data;
    // An enriched channel wraps the payload: {"data", "sender": {"user", "client", "name"}, "time", "id"}.
    const enriched = data && typeof data === "object" && data.sender && "data" in data;
    const sender = enriched ? data.sender : ctx.info;
    const who = sender ? (sender.user || "(anonymous)") + (sender.name ? " (" + sender.name + ")" : "") : "server";
    const payload = enriched ? data.data : data;
    const when = enriched && typeof data.time === "number" ? data.time : Date.now();
    addRow("live-messages", [clock(when), who, { code: JSON.stringify(payload) }]);
  });
  sub.subscribe();
  centrifuge.connect();

  let cursor = {};
  const presence = document.getElementById("live-presence");
  const note = document.getElementById("live-joinleave-note");
  async function poll() {
    try {
      const url = config.eventsUrl + "?" + new URLSearchParams({ channel: config.channel, cursor: JSON.stringify(cursor) });
      const response = await fetch(url, { credentials: "same-origin" });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error || "HTTP " + response.status);
      const p = answer.presence;
      presence.textContent = p.error ? p.error : p.num_clients + " clients, " + p.num_users + " users";
      note.textContent = answer.error ? answer.error
        : answer.join_leave ? (answer.behind ? "joins/leaves: behind (busy log)" : "joins/leaves: from the log")
        : "joins/leaves: not logged (the channel's rule has log_join_leave off)";
      cursor = answer.cursor;
      answer.events.forEach(function (e) { addRow("live-joinleave", [clock(e.time), e.type, e.user || "(anonymous)", e.client]); });
    } catch (err) {
      presence.textContent = "unavailable (" + err.message + ")";
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
