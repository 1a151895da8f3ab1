// Moves through the /inbox page with the keyboard and its filters, in headless Chromium.
// Usage: node inbox_navigate.mjs BASE_URL TOKEN PLAN_JSON
// PLAN_JSON: {"pending": N, "session": "KEY" (to filter by), "type": "approval" (to filter by),
//   "approve": REVIEW_ID (approved with the `a` key), "screenshots": DIR}
// The token is planted in localStorage first, where earlier versions of the page kept
// it: the page must move it to sessionStorage and sign in with it.
import { join } from "node:path";
import { inboxPage, phoneWidth, storage, withBrowser } from "./browser.mjs";

const [base, token, planJson] = process.argv.slice(2);
const plan = JSON.parse(planJson);
const report = await withBrowser(async (browser) => {
  const { page, seen } = await inboxPage(browser, base);
  const report = { screenshots: [] };
  const pending = () => page.evaluate(() => [...document.querySelectorAll("#pending [data-review]")].map((b) => b.dataset.review));
  const selected = () => page.evaluate(() => { const b = document.querySelector("nav button.item.active"); return b && b.dataset.review; });
  const shown = () => page.evaluate(() => { const s = document.querySelector("#review-status"); return s && document.querySelector("#detail h2").textContent; });

  await page.goto(`${base}/inbox`);
  await page.evaluate((token) => { localStorage.setItem("facio.token", token); localStorage.setItem("facio.reviewer", "kim"); }, token);
  await page.reload();
  await page.waitForFunction((n) => document.querySelectorAll("#pending [data-review]").length >= n, plan.pending, { timeout: 60000 });
  report.migrated = await storage(page, token);
  report.tokenFieldHidden = !(await page.locator("#token").isVisible());
  report.reviewer = await page.inputValue("#reviewer");
  report.pending = await pending();

  await page.keyboard.press("j");
  report.afterJ = await selected();
  await page.keyboard.press("j");
  report.afterJJ = await selected();
  await page.keyboard.press("k");
  report.afterJJK = await selected();
  report.title = await shown();

  // Typing in a field never moves or decides.
  await page.focus("#reviewer");
  await page.keyboard.press("End");
  await page.keyboard.type("jjka");
  report.whileTyping = { selected: await selected(), reviewer: await page.inputValue("#reviewer") };
  await page.fill("#reviewer", "kim");
  await page.locator("#detail h2").click();

  await page.selectOption("#filter-session", plan.session);
  report.bySession = await pending();
  await page.screenshot({ path: join(plan.screenshots, "filtered.png"), fullPage: true });
  report.screenshots.push(join(plan.screenshots, "filtered.png"));
  await page.selectOption("#filter-session", "");
  await page.selectOption("#filter-type", plan.type);
  report.byType = await pending();
  await page.selectOption("#filter-type", "");
  report.unfiltered = await pending();

  // Approve one with `a`; `j` then goes on to the first review still waiting.
  await page.click(`#pending [data-review="${plan.approve}"]`);
  await page.keyboard.press("a");
  await page.locator("#review-status", { hasText: "decided" }).waitFor({ timeout: 60000 });
  await page.keyboard.press("j");
  report.afterDecision = { selected: await selected(), pending: await pending(),
    recent: await page.evaluate(() => [...document.querySelectorAll("#recent [data-review]")].map((b) => b.innerText)) };

  report.listPhoneWidth = await phoneWidth(page);
  await page.screenshot({ path: join(plan.screenshots, "list-phone.png"), fullPage: true });
  report.screenshots.push(join(plan.screenshots, "list-phone.png"));

  // Reloading the tab keeps the session's sign-in; the token never reaches localStorage.
  await page.reload();
  await page.waitForFunction((n) => document.querySelectorAll("#pending [data-review]").length >= n, plan.pending - 1, { timeout: 60000 });
  report.afterReload = await storage(page, token);
  await page.click("#signout");
  report.afterSignOut = { ...(await storage(page, token)), tokenFieldVisible: await page.locator("#token").isVisible(), listed: (await pending()).length };
  report.seen = seen;
  return report;
});
console.log(JSON.stringify(report));
