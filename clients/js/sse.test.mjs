// The browser-side EventSource (npm `eventsource`, the WHATWG API) against
// kintogo's event streams, across the reconnections EventSource makes by
// itself (the server ends streams every 2 s in this run:
// KINTO_PUSH_MAX_STREAM_SECONDS=2).
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventSource } from "eventsource";

const server = process.env.KINTO_SERVER || "http://127.0.0.1:8888/v1";
const auth = "Basic " + Buffer.from("alice:pw").toString("base64");
const headers = { Authorization: auth, "Content-Type": "application/json" };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function setup() {
  assert.equal((await fetch(server + "/__flush__", { method: "POST" })).status, 202);
  for (const path of ["/buckets/main", "/buckets/main/collections/c"]) {
    assert.equal((await fetch(server + path, { method: "PUT", headers })).status, 201);
  }
}

// Writes n records, one every gap ms; returns their timestamps.
async function writeRecords(n, gap) {
  const written = [];
  for (let i = 0; i < n; i++) {
    const resp = await fetch(server + "/buckets/main/collections/c/records", { method: "POST", headers, body: JSON.stringify({ data: { i } }) });
    assert.equal(resp.status, 201);
    written.push((await resp.json()).data.last_modified);
    await sleep(gap);
  }
  return written;
}

function listen(url, withAuth) {
  const state = { received: [], opened: 0 };
  const options = withAuth
    ? { fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: auth } }) }
    : {};
  state.es = new EventSource(url, options);
  state.es.addEventListener("open", () => state.opened++);
  state.es.addEventListener("change", (e) => state.received.push({
    id: Number(e.lastEventId),
    position: e.lastEventId.split(".").map(Number), // the monitor's: P.k
    data: JSON.parse(e.data),
  }));
  return state;
}

test("EventSource: a collection's records, every change exactly once and in order across reconnections", async () => {
  await setup();
  const s = listen(server + "/buckets/main/collections/c/records", true);
  while (s.opened === 0) await sleep(20);
  const written = await writeRecords(12, 400); // 4.8 s: the stream is renewed at least twice
  const deadline = Date.now() + 8000;
  while (s.received.length < written.length && Date.now() < deadline) await sleep(50);
  s.es.close();
  assert.ok(s.opened >= 2, `the stream was renewed (${s.opened} connections)`);
  assert.deepEqual(s.received.map((r) => r.id), written);
  assert.deepEqual(s.received.map((r) => r.data.i), written.map((_, i) => i));
});

test("EventSource: the monitor, newest timestamps in order across reconnections", async () => {
  await setup();
  const s = listen(server + "/buckets/monitor/collections/changes/records?bucket=main", false);
  while (s.opened === 0) await sleep(20);
  const written = await writeRecords(8, 400);
  const last = written[written.length - 1];
  const deadline = Date.now() + 8000;
  while (!s.received.some((r) => r.data.last_modified === last) && Date.now() < deadline) await sleep(50);
  s.es.close();
  const stamps = s.received.map((r) => r.data.last_modified);
  // An entry is a collection's latest timestamp: changes made while the
  // client reconnects arrive as one event, never twice, never out of order.
  // Event ids are positions of the change log ("P.k"), increasing too.
  assert.equal(stamps[stamps.length - 1], last);
  assert.ok(stamps.every((ts, i) => i === 0 || ts > stamps[i - 1]), `increasing: ${stamps}`);
  assert.ok(stamps.every((ts) => written.includes(ts)));
  const positions = s.received.map((r) => r.position);
  assert.ok(positions.every((p, i) => i === 0 || p[0] > positions[i - 1][0] || (p[0] === positions[i - 1][0] && p[1] > positions[i - 1][1])), `positions: ${positions}`);
  assert.ok(s.received.every((r) => r.data.collection === "c"));
});
