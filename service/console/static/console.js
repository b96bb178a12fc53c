// hookyard console: the live tail and replay progress. Everything else is plain HTML.
// Served from /ui/static (Content-Security-Policy: default-src 'self'); builds DOM with textContent only.
"use strict";

function cell(row, text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function utc(iso) {
  return iso ? iso.replace("T", " ") : "";
}

function startLiveTail(table) {
  const body = table.querySelector("[data-live-rows]");
  const state = document.querySelector("[data-live-state]");
  const source = new EventSource(table.dataset.liveStream);
  const maxRows = 200;
  source.onopen = () => { if (state) state.textContent = "live"; };
  source.onerror = () => { if (state) state.textContent = "reconnecting…"; };
  source.addEventListener("event", (message) => {
    const event = JSON.parse(message.data);
    const placeholder = body.querySelector(".placeholder");
    if (placeholder) placeholder.remove();
    const row = document.createElement("tr");
    row.dataset.eventId = event.id;
    row.dataset.status = event.status;
    row.className = "arrived";
    cell(row, utc(event.received_at));
    cell(row, event.source);
    cell(row, event.action);
    const status = cell(row, "");
    const badge = document.createElement("span");
    badge.className = "badge status-" + event.status;
    badge.textContent = event.status;
    status.appendChild(badge);
    const link = document.createElement("a");
    link.href = "/ui/events/" + encodeURIComponent(event.id);
    link.textContent = event.id;
    cell(row, "", "mono").appendChild(link);
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > maxRows) body.deleteRow(body.rows.length - 1);
  });
}

function followReplay(section) {
  const url = "/ui/replays/" + encodeURIComponent(section.dataset.replayId) + "/progress";
  const bar = section.querySelector("progress");
  const field = (name) => section.querySelector('[data-field="' + name + '"]');
  const tick = async () => {
    let replay;
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return setTimeout(tick, 3000);
      replay = await response.json();
    } catch (error) {
      return setTimeout(tick, 3000);
    }
    section.dataset.replayStatus = replay.status;
    field("status").textContent = replay.status;
    field("status").className = "badge replay-" + replay.status;
    field("queued").textContent = replay.queued.toLocaleString("en-US");
    field("deliveries").textContent = replay.deliveries.toLocaleString("en-US");
    field("finished_at").textContent = replay.finished_at ? utc(replay.finished_at) : "—";
    bar.max = Math.max(replay.deliveries, 1);
    bar.value = replay.queued;
    if (replay.status !== "done") setTimeout(tick, 1000);
  };
  if (section.dataset.replayStatus !== "done") setTimeout(tick, 500);
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.querySelector("[data-live-stream]");
  if (live) startLiveTail(live);
  const replay = document.querySelector("[data-replay-id]");
  if (replay) followReplay(replay);
});
