// Integration tests of kintogo with the JavaScript clients published on
// npm: kinto-http (the HTTP client) and kinto (the offline-first client
// with sync). They run against a kintogo started by scripts/clients.sh at
// KINTO_SERVER (default http://127.0.0.1:8888/v1), with the default bucket,
// history, accounts and flush plugins, basicauth, and paginate_by unset.
require("fake-indexeddb/auto"); // the offline client stores in IndexedDB
const { test, beforeEach } = require("node:test");
const assert = require("node:assert/strict");
const KintoHttp = require("kinto-http").default;
const Kinto = require("kinto").default;

const server = process.env.KINTO_SERVER || "http://127.0.0.1:8888/v1";
const auth = (user) => ({ Authorization: "Basic " + Buffer.from(user + ":pw").toString("base64") });

beforeEach(async () => {
  const resp = await fetch(server + "/__flush__", { method: "POST" });
  assert.equal(resp.status, 202);
});

test("kinto-http: server info and capabilities", async () => {
  const api = new KintoHttp(server, { headers: auth("alice") });
  const info = await api.fetchServerInfo();
  assert.match(info.http_api_version, /^\d\.\d+$/);
  for (const cap of ["default_bucket", "history", "accounts", "permissions_endpoint", "changes"]) {
    assert.ok(info.capabilities[cap], cap);
  }
  const user = await api.fetchUser();
  assert.match(user.id, /^basicauth:/);
  assert.equal(user.bucket.length, 36);
  assert.equal((await api.fetchServerSettings()).batch_max_requests, 25);
});

test("kinto-http: CRUD, safe writes, conflicts and permissions", async () => {
  const alice = new KintoHttp(server, { headers: auth("alice") });
  const bob = new KintoHttp(server, { headers: auth("bob") });
  await alice.createBucket("blog");
  const bucket = alice.bucket("blog");
  await bucket.createCollection("articles");
  const articles = bucket.collection("articles");
  const { data: created } = await articles.createRecord({ title: "first" });
  assert.equal(created.title, "first");
  // Safe update with the right timestamp, then a conflicting one.
  const { data: updated } = await articles.updateRecord({ ...created, title: "second" }, { safe: true, last_modified: created.last_modified });
  assert.ok(updated.last_modified > created.last_modified);
  await assert.rejects(
    articles.updateRecord({ ...created, title: "stale" }, { safe: true, last_modified: created.last_modified }),
    (err) => err.data && err.data.code === 412 && err.data.details.existing.title === "second",
  );
  // Create-only with safe: refused on an existing record.
  await assert.rejects(articles.createRecord({ id: created.id, title: "again" }, { safe: true }), (err) => err.data.code === 412);
  // Bob cannot read until alice shares.
  await assert.rejects(bob.bucket("blog").collection("articles").listRecords(), (err) => err.data.code === 403);
  await articles.setPermissions({ read: ["system.Authenticated"] }, { patch: true });
  const { data: seen } = await bob.bucket("blog").collection("articles").listRecords();
  assert.deepEqual(seen.map((r) => r.title), ["second"]);
  await articles.deleteRecord(created.id);
  const { data: afterDelete } = await articles.listRecords({ since: String(updated.last_modified) });
  assert.equal(afterDelete.length, 1);
  assert.equal(afterDelete[0].deleted, true);
});

test("kinto-http: pagination, filters, totals and batch", async () => {
  const api = new KintoHttp(server, { headers: auth("alice") });
  await api.createBucket("b");
  await api.bucket("b").createCollection("c");
  const coll = api.bucket("b").collection("c");
  await coll.batch((batch) => {
    for (let i = 0; i < 12; i++) batch.createRecord({ id: "r" + String(i).padStart(2, "0"), n: i % 3 });
  });
  assert.equal(await coll.getTotalRecords(), 12);
  const page = await coll.listRecords({ limit: 5, sort: "id" });
  assert.equal(page.data.length, 5);
  assert.ok(page.hasNextPage);
  const next = await page.next();
  assert.equal(next.data[0].id, "r05");
  const all = await coll.listRecords({ limit: 5, pages: Infinity, sort: "id" });
  assert.equal(all.data.length, 12);
  const filtered = await coll.listRecords({ filters: { n: 2 }, sort: "-id" });
  assert.deepEqual(filtered.data.map((r) => r.id), ["r11", "r08", "r05", "r02"]);
  const ts = await coll.getRecordsTimestamp();
  assert.match(ts, /^"?\d+"?$/);
});

test("kinto-http: history and permissions endpoints", async () => {
  const api = new KintoHttp(server, { headers: auth("alice") });
  await api.createBucket("h");
  await api.bucket("h").createCollection("c");
  await api.bucket("h").collection("c").createRecord({ id: "x", v: 1 });
  const history = await api.bucket("h").listHistory({ filters: { resource_name: "record" } });
  assert.equal(history.data.length, 1);
  assert.equal(history.data[0].target.data.id, "x");
  const perms = await api.listPermissions({ pages: Infinity });
  assert.ok(perms.data.some((p) => p.uri === "/buckets/h/collections/c/records/x"));
});

// SyncResultObject caches its lists on first read (during the sync
// itself), so the assertions below look at the data, local and remote.
test("kinto offline client: sync, pull with _since, conflicts, deletions", async () => {
  const local = new Kinto({ remote: server, headers: auth("alice"), adapterOptions: { dbName: "one" } });
  const other = new Kinto({ remote: server, headers: auth("alice"), adapterOptions: { dbName: "two" } });
  const http = new KintoHttp(server, { headers: auth("alice") });
  const tasks = local.collection("tasks");
  const tasks2 = other.collection("tasks");
  const titles = async (coll) => (await coll.list({ order: "title" })).data.map((r) => r.title).sort();
  const remoteTitles = async () =>
    (await http.bucket("default").collection("tasks").listRecords()).data.map((r) => r.title).sort();

  const { data: a } = await tasks.create({ title: "write tests", done: false });
  await tasks.create({ title: "ship", done: false });
  let result = await tasks.sync();
  assert.ok(result.ok);
  assert.deepEqual(await remoteTitles(), ["ship", "write tests"]);

  // The second client pulls both (from the default bucket).
  assert.ok((await tasks2.sync()).ok);
  assert.deepEqual(await titles(tasks2), ["ship", "write tests"]);

  // A change on one side reaches the other with a _since pull.
  await tasks2.update({ ...(await tasks2.get(a.id)).data, done: true });
  assert.ok((await tasks2.sync()).ok);
  assert.ok((await tasks.sync()).ok);
  assert.equal((await tasks.get(a.id)).data.done, true);

  // Both change the same record: the second to sync gets a conflict.
  await tasks.update({ ...(await tasks.get(a.id)).data, title: "local" });
  await tasks2.update({ ...(await tasks2.get(a.id)).data, title: "remote" });
  assert.ok((await tasks2.sync()).ok);
  result = await tasks.sync();
  assert.equal(result.ok, false);
  assert.equal(result.conflicts.length, 1);
  assert.equal(result.conflicts[0].remote.title, "remote");
  await tasks.resolve(result.conflicts[0], result.conflicts[0].remote);
  assert.ok((await tasks.sync()).ok);
  assert.equal((await tasks.get(a.id)).data.title, "remote");
  assert.deepEqual(await remoteTitles(), ["remote", "ship"]);

  // A deletion travels as a tombstone.
  await tasks.delete(a.id);
  assert.ok((await tasks.sync()).ok);
  assert.ok((await tasks2.sync()).ok);
  assert.deepEqual(await titles(tasks2), ["ship"]);
  assert.deepEqual(await remoteTitles(), ["ship"]);
});
