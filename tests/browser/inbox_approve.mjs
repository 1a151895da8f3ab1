// Approves one review in the /inbox page with a real click in headless Chromium.
// Usage: node inbox_approve.mjs BASE_URL TOKEN REVIEW_ID REVIEWER [SCREENSHOT]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, token, reviewId, reviewer, screenshot] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), "facio-chromium-"));
// A fresh profile per run: nothing carries over between tests.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  timeout: 120000,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
try {
  const page = await browser.newPage();
  await page.goto(`${base}/inbox`);
  await page.fill("#reviewer", reviewer);
  await page.dispatchEvent("#reviewer", "change");
  await page.fill("#token", token);
  await page.dispatchEvent("#token", "change");
  const item = page.locator(`#pending [data-review="${reviewId}"]`);
  await item.waitFor({ timeout: 60000 });
  await item.click();
  const context = await page.locator("#detail").innerText();
  await page.locator('button[data-option="approve"]').click();
  await page.locator("#review-status", { hasText: "decided" }).waitFor({ timeout: 60000 });
  await page.locator(`#recent [data-review="${reviewId}"]`).waitFor({ timeout: 60000 });
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ approved: true, context }));
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
