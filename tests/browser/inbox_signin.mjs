// Signs a reviewer in to the /inbox page with OpenID Connect, as a person would:
// "Sign in", the identity provider's page, back to the inbox; then approves a review.
// Usage: node inbox_signin.mjs BASE_URL ISSUER SUBJECT REVIEW_ID SCREENSHOT_DIR
import { join } from "node:path";
import { withBrowser } from "./browser.mjs";
import { answer, openReview } from "./review.mjs";

const [base, issuer, subject, reviewId, shots] = process.argv.slice(2);
const report = await withBrowser(async (context) => {
  const page = context.pages()[0] || await context.newPage();
  const allowed = [new URL(base).origin, new URL(issuer).origin];
  const seen = { outside: [], dialogs: [], errors: [] };
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (allowed.some((origin) => url.startsWith(origin + "/"))) return route.continue();
    seen.outside.push(url);
    return route.abort();
  });
  page.on("dialog", (dialog) => { seen.dialogs.push(dialog.message()); dialog.dismiss().catch(() => {}); });
  page.on("pageerror", (error) => seen.errors.push(String(error)));
  const report = { screenshots: [], seen };
  const shot = async (name) => {
    const path = join(shots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    report.screenshots.push(path);
  };

  await page.goto(`${base}/inbox`);
  await page.locator("#sso").waitFor({ state: "visible", timeout: 60000 });
  report.nameFieldShown = await page.locator("#reviewer").isVisible();
  await shot("signed-out");
  await page.locator("#sso").click();
  await page.locator("#signin").waitFor({ timeout: 60000 });
  report.providerPage = page.url().startsWith(issuer + "/authorize?");
  await page.selectOption("#user", subject);
  await shot("provider");
  await page.locator("#signin").click();
  await page.locator("#whoami").waitFor({ state: "visible", timeout: 60000 });
  report.whoami = await page.locator("#whoami").innerText();
  report.url = page.url();
  report.signInShown = await page.locator("#sso").isVisible();
  report.storage = await page.evaluate(() => {
    const token = sessionStorage.getItem("facio.token") || "";
    return {
      session: token.split(".").length === 3,
      local: Object.keys(localStorage).filter((k) => token && localStorage.getItem(k).includes(token)),
    };
  });
  report.cookies = (await context.cookies()).map((c) => c.name);
  await openReview(page, reviewId);
  await shot("signed-in");
  await answer(page, { option: "approve" });
  await page.locator("#review-status", { hasText: "decided" }).waitFor({ timeout: 60000 });
  report.status = await page.locator("#review-status").innerText();
  report.detail = await page.locator("#detail").innerText();
  await shot("decided");
  // Signing out forgets the token; the page offers the sign-in again.
  await page.locator("#signout").click();
  await page.locator("#sso").waitFor({ state: "visible", timeout: 60000 });
  report.afterSignOut = await page.evaluate(() => sessionStorage.getItem("facio.token"));
  return report;
});
console.log(JSON.stringify(report));
