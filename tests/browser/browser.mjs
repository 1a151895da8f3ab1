// What the browser scripts share: a headless Debian Chromium with a fresh profile, a
// page that may only talk to the gateway, and signing in like a reviewer.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 740 };

/// Runs `body(context)` in a fresh Chromium profile (nothing carries over between
/// tests) and closes it whatever happens.
export async function withBrowser(body) {
  const profile = mkdtempSync(join(tmpdir(), "facio-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: 120000,
    viewport: DESKTOP,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
  try {
    return await body(context);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/// A page of the inbox that records (and blocks) any request leaving the gateway,
/// every dialog (an alert from injected script would be one) and every page error.
export async function inboxPage(context, base) {
  const page = context.pages()[0] || await context.newPage();
  const seen = { outside: [], dialogs: [], errors: [] };
  const origin = new URL(base).origin;
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin + "/")) return route.continue();
    seen.outside.push(url);
    return route.abort();
  });
  page.on("dialog", (dialog) => { seen.dialogs.push(dialog.message()); dialog.dismiss().catch(() => {}); });
  page.on("pageerror", (error) => seen.errors.push(String(error)));
  return { page, seen };
}

/// Types the reviewer's name and the token into the header, as a person would.
export async function signIn(page, reviewer, token) {
  await page.fill("#reviewer", reviewer);
  await page.dispatchEvent("#reviewer", "change");
  await page.fill("#token", token);
  await page.dispatchEvent("#token", "change");
}

/// Where the token is kept: sessionStorage only.
export async function storage(page, token) {
  return page.evaluate((token) => ({
    session: sessionStorage.getItem("facio.token") === token,
    local: Object.keys(localStorage).filter((k) => localStorage.getItem(k).includes(token)),
  }), token);
}

/// The page's width at phone size: what scrolls sideways, if anything.
export async function phoneWidth(page) {
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(200);
  return page.evaluate(() => document.scrollingElement.scrollWidth);
}
