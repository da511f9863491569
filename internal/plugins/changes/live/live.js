// The live view of the changes feed: the monitor's entries, then its event
// stream (Server-Sent Events), which sends one "change" event per changed
// entry. No framework: the page is small and must stay so.
"use strict";

const monitor = "../buckets/monitor/collections/changes/records";
const rows = new Map(); // entry id -> {entry, tr}
const tbody = document.getElementById("entries");
const statusEl = document.getElementById("status");

function setStatus(text, cls) {
  statusEl.textContent = text;
  statusEl.className = "status " + cls;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

// render writes an entry's row (text only: names are never HTML).
function render(entry, tr) {
  tr.replaceChildren(
    cell(entry.bucket),
    cell(entry.collection),
    cell(new Date(entry.last_modified).toLocaleString()),
    cell(String(entry.last_modified), "ts"),
  );
  tr.dataset.bucket = entry.bucket;
  tr.dataset.collection = entry.collection;
  tr.dataset.lastModified = String(entry.last_modified);
}

// place keeps rows sorted newest first.
function place(tr, lastModified) {
  for (const other of tbody.children) {
    if (other !== tr && Number(other.dataset.lastModified) < lastModified) {
      tbody.insertBefore(tr, other);
      return;
    }
  }
  tbody.appendChild(tr);
}

function upsert(entry, fresh) {
  let row = rows.get(entry.id);
  if (entry.deleted) {
    if (row) { row.tr.remove(); rows.delete(entry.id); }
  } else {
    if (!row) {
      row = { tr: document.createElement("tr") };
      rows.set(entry.id, row);
    } else if (row.entry.last_modified >= entry.last_modified) {
      return;
    }
    row.entry = entry;
    render(entry, row.tr);
    place(row.tr, entry.last_modified);
    if (fresh) {
      row.tr.classList.remove("fresh");
      void row.tr.offsetWidth; // restart the animation
      row.tr.classList.add("fresh");
    }
  }
  document.getElementById("empty").hidden = rows.size > 0;
}

async function start() {
  const resp = await fetch(monitor, { headers: { Accept: "application/json" } });
  if (!resp.ok) {
    setStatus("the changes feed answered " + resp.status, "connecting");
    return;
  }
  const etag = (resp.headers.get("ETag") || "").replace(/"/g, "");
  const body = await resp.json();
  for (const entry of body.data) upsert(entry, false);
  document.getElementById("empty").hidden = rows.size > 0;
  // Resume from what was listed: nothing committed in between is missed.
  const url = etag ? monitor + "?_since=" + encodeURIComponent(etag) : monitor;
  const stream = new EventSource(url);
  stream.addEventListener("open", () => setStatus("live", "live"));
  stream.addEventListener("error", () => setStatus("reconnecting…", "connecting"));
  stream.addEventListener("change", (e) => upsert(JSON.parse(e.data), true));
}

start().catch((err) => setStatus("error: " + err.message, "connecting"));
