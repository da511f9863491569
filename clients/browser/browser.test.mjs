// kintogo's pages in a real browser (Debian's headless Chromium, driven by
// playwright-core): the admin UI (kinto-admin, served at /v1/admin/) and
// the live view of the changes feed (/v1/changes/). scripts/browser.sh
// starts the server with no configuration and creates its administrator.
//
//   KINTO_SERVER=http://127.0.0.1:8888/v1 KINTO_ADMIN=admin:pw SCREENSHOTS=dir npm test
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const base = process.env.KINTO_SERVER || "http://127.0.0.1:8888/v1";
const [user, password] = (process.env.KINTO_ADMIN || "admin:pw").split(":");
const shots = process.env.SCREENSHOTS || ".";
const auth = "Basic " + Buffer.from(`${user}:${password}`).toString("base64");

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // The flags keep Chromium off the network it cannot reach here.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
});

// api writes through the HTTP API as another client would.
async function api(method, path, body) {
  const resp = await fetch(base + path, {
    method,
    headers: { Authorization: auth, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  assert.ok(resp.ok, `${method} ${path}: ${resp.status} ${text}`);
  return JSON.parse(text);
}

function newPage() {
  return browser.newPage({ viewport: { width: 1280, height: 800 } });
}

test("admin UI: log in with an account, create a bucket, a collection and a record, see it listed", async () => {
  const page = await newPage();
  const errors = [];
  // kinto-admin throws "Client not configured." once while a reloaded
  // page restores its session, whatever the server: not an error of ours.
  page.on("pageerror", (err) => err.message !== "Client not configured." && errors.push(err.message));
  const bid = "admin-test-" + Date.now();

  await page.goto(base + "/admin/");
  await page.getByLabel("Kinto Account Auth").check();
  await page.fill("#root_credentials_username", user);
  await page.fill("#root_credentials_password", password);
  await page.getByRole("button", { name: "Sign in using Kinto Account Auth" }).click();
  await page.getByRole("link", { name: "Create bucket" }).click();

  await page.fill("#root_id", bid);
  await page.getByRole("button", { name: "Create bucket" }).click();
  await page.waitForURL(`**/#/buckets/${bid}/attributes`);
  // kinto-admin reads the caller's permissions when the session starts:
  // a reload (which keeps the session) lets it see the new bucket's.
  await page.reload();
  await page.locator(`a[href="#/buckets/${bid}/collections/create"]`).click();

  await page.fill("#root_id", "fruits");
  await page.getByRole("button", { name: "Create collection" }).click();
  await page.waitForURL(new RegExp(`#/buckets/${bid}/collections/fruits/records/?$`));
  await page.locator(`a[href="#/buckets/${bid}/collections/fruits/records/create"]`).first().click();

  await page.fill("#root_title", "kiwi");
  await page.fill("#root_content", "green, furry");
  await page.getByRole("button", { name: "Create record" }).click();
  await page.waitForURL(new RegExp(`#/buckets/${bid}/collections/fruits/records/?$`));
  const row = page.locator("table tbody tr", { hasText: "kiwi" });
  await row.waitFor();
  await page.screenshot({ path: `${shots}/admin.png`, fullPage: true });

  // What the UI shows is what the server stored.
  const { data } = await api("GET", `/buckets/${bid}/collections/fruits/records`);
  assert.equal(data.length, 1);
  assert.equal(data[0].title, "kiwi");
  assert.equal(data[0].content, "green, furry");
  assert.deepEqual(errors, []);
  await page.close();
});

test("live view: a write by another client appears without reload, newest first, highlighted", async () => {
  const bid = "live-test-" + Date.now();
  await api("PUT", `/buckets/${bid}`);
  await api("PUT", `/buckets/${bid}/collections/first`);
  await api("PUT", `/buckets/${bid}/collections/second`);

  const page = await newPage();
  await page.goto(base + "/changes/");
  await page.locator("#status.live").waitFor();
  await page.evaluate(() => { window.notReloaded = true; });
  const rowOf = (cid) => page.locator(`#entries tr[data-bucket="${bid}"][data-collection="${cid}"]`);
  await rowOf("first").waitFor();
  await rowOf("second").waitFor();

  // A record in the older collection: its entry moves to the top.
  const { data: rec } = await api("POST", `/buckets/${bid}/collections/first/records`, { data: { name: "kiwi" } });
  const first = rowOf("first");
  await page.waitForFunction(
    ([b, ts]) => {
      const top = document.querySelector("#entries tr");
      return top && top.dataset.bucket === b && top.dataset.collection === "first" && top.dataset.lastModified === String(ts);
    },
    [bid, rec.last_modified],
  );
  assert.match(await first.getAttribute("class"), /fresh/);
  assert.equal(await first.locator("td.ts").innerText(), String(rec.last_modified));

  // A new collection appears too.
  await api("PUT", `/buckets/${bid}/collections/third`);
  await rowOf("third").waitFor();
  await page.screenshot({ path: `${shots}/live.png`, fullPage: true });
  assert.equal(await page.evaluate(() => window.notReloaded), true);
  await page.close();
});

// kinto-admin's OpenID Connect login through kintogo's /openid endpoints
// and a real provider (Keycloak, started by scripts/keycloak.sh; its user
// ana): the provider's login form, back in the admin connected as the
// provider's user, who can then create a bucket.
test("admin UI: log in with OpenID Connect (Keycloak)", { skip: !process.env.KINTO_OIDC_ISSUER && "no KINTO_OIDC_ISSUER" }, async () => {
  const page = await newPage();
  await page.goto(base + "/admin/");
  await page.getByLabel("OpenID Connect (Keycloak)").check();
  await page.getByRole("button", { name: "Sign in using OpenID Connect (Keycloak)" }).click();
  await page.waitForURL((url) => url.href.startsWith(process.env.KINTO_OIDC_ISSUER));
  await page.fill("#username", "ana");
  await page.fill("#password", "ana-password");
  await page.click("#kc-login");
  await page.waitForURL(/\/v1\/admin\/#\//);
  const connected = page.getByText(/Connected as keycloak:/);
  await connected.waitFor();
  const userID = (await connected.innerText()).match(/keycloak:[0-9a-f-]+/)[0];
  await page.screenshot({ path: `${shots}/admin-openid.png`, fullPage: true });

  const bid = "openid-test-" + Date.now();
  await page.getByRole("link", { name: "Create bucket" }).click();
  await page.fill("#root_id", bid);
  await page.getByRole("button", { name: "Create bucket" }).click();
  await page.waitForURL(`**/#/buckets/${bid}/attributes`);
  // The bucket is the provider's user's: the access token kinto-admin
  // received through /openid/keycloak/token (kept in its storage) reads
  // it, with the user as its writer.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  const token = stored.match(/eyJ[\w-]+\.[\w-]+\.[\w-]+/)?.[0];
  assert.ok(token, "no access token in kinto-admin's storage");
  const resp = await fetch(`${base}/buckets/${bid}`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(resp.status, 200);
  const { permissions } = await resp.json();
  assert.deepEqual(permissions.write, [userID]);
  await page.close();
});
