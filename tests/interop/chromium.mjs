// Headless Chromium against examples/auth_demo: every browser carrier opens with the
// right token and is refused with a wrong one, each in a fresh profile (Chromium keeps
// Basic credentials per host:port). Then the whole page once, for a screenshot.
// usage: node chromium.mjs http://127.0.0.1:PORT/ SCREENSHOT.png  (NODE_PATH must reach playwright-core)
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [url, screenshot] = process.argv.slice(2);
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

async function withPage(fn) {
  const dir = mkdtempSync(join(tmpdir(), "wsgate-chromium-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: ARGS,
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    await page.goto(url);
    await page.click("#login");
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("logged in"));
    return await fn(page);
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const carriers = ["query", "cookie", "subprotocol", "first", "basic"];
let failures = 0;
for (const name of carriers) {
  for (const right of [true, false]) {
    const outcome = await withPage((page) => page.evaluate(([n, r]) => window.wsgateDemo.runAttempt(n, r), [name, right]));
    const ok = right ? outcome === "accepted" : outcome.startsWith("refused");
    console.log(`${ok ? "ok  " : "FAIL"} ${name} ${right ? "right" : "wrong"} token: ${outcome}`);
    if (!ok) failures++;
  }
}

await withPage(async (page) => {
  await page.click("#run-all");
  await page.waitForFunction(() => document.body.dataset.done === "yes", null, { timeout: 120000 });
  const cells = await page.$$eval("td[id^=r-]", (tds) => tds.map((td) => [td.id, td.textContent]));
  for (const [id, text] of cells) {
    const ok = id.endsWith("-right") ? text === "accepted" : text.startsWith("refused");
    if (!ok) { console.log(`FAIL page ${id}: ${text}`); failures++; }
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`page: ${cells.length} cells checked; screenshot ${screenshot}`);
});

if (failures) { console.log(`${failures} failure(s)`); process.exit(1); }
