// End-to-end tests of the web UI: a real headless Chromium (Debian's `chromium`, driven by
// playwright-core: no browser download) against the real local stack (`scripts/stack up`:
// api-server, a host-agent with simulated boxes, a build worker, the terminal gateway, a git
// daemon). Screenshots of the main pages go to test-results/.
//
//   LABWRIGHT_UI_URL       (http://127.0.0.1:8080)
//   LABWRIGHT_API_KEY_FILE (.labwright/api-server/admin-key)
//   LABWRIGHT_GIT_URL      (git://127.0.0.1:19418/hello-python)
//   CHROMIUM               (/usr/bin/chromium)
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const base = process.env.LABWRIGHT_UI_URL ?? 'http://127.0.0.1:8080';
const key = readFileSync(process.env.LABWRIGHT_API_KEY_FILE ?? join(root, '.labwright/api-server/admin-key'), 'utf8').trim();
const gitUrl = process.env.LABWRIGHT_GIT_URL ?? 'git://127.0.0.1:19418/hello-python';
const out = join(here, '../test-results');
mkdirSync(out, { recursive: true });

const results = [];
async function test(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - started });
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}\n     ${String(e?.stack ?? e).split('\n').slice(0, 6).join('\n     ')}`);
    await page.screenshot({ path: join(out, `failure-${name.replace(/\W+/g, '-')}.png`) }).catch(() => {});
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => {
  if (m.type() === 'error') consoleErrors.push(m.text());
});
page.on('pageerror', (e) => consoleErrors.push(String(e)));
page.setDefaultTimeout(30_000);
const shot = (name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });

await test('sign in with an API key; the tenant is shown', async () => {
  await page.goto(base + '/');
  await page.getByLabel('API key').fill('lw_not-a-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: '64 hexadecimal' }).waitFor();
  await shot('01-sign-in');
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('tenant').filter({ hasText: 'default' }).waitFor();
});

await test('the fleet shows the simulated host and its boxes online', async () => {
  await page.getByTestId('host').filter({ hasText: 'sim-host-1' }).filter({ hasText: 'online' }).waitFor();
  await page.getByTestId('device-row').filter({ hasText: 'living room' }).filter({ hasText: 'online' }).waitFor();
  await page.getByLabel('Search devices').fill('bedroom');
  await page.getByTestId('device-row').filter({ hasText: 'bedroom' }).waitFor();
  if ((await page.getByTestId('device-row').count()) !== 1) throw new Error('the search did not filter');
  await page.getByLabel('Search devices').fill('');
  await shot('02-fleet');
});

await test('the live view changes after pressing a key', async () => {
  await page.getByRole('link', { name: /living room/ }).click();
  const canvas = page.getByTestId('live-canvas');
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=live-canvas]')?.dataset.frames) > 0);
  // Start from Home, then move the highlight: a new frame must come.
  await page.getByRole('button', { name: 'Home' }).click();
  await page.waitForTimeout(500);
  const before = Number(await canvas.getAttribute('data-seq'));
  await page.getByTitle('right').click();
  await page.waitForFunction(
    (b) => Number(document.querySelector('[data-testid=live-canvas]')?.dataset.seq) > b,
    before,
  );
  // Keyboard shortcuts drive the same pad.
  const afterClick = Number(await canvas.getAttribute('data-seq'));
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction(
    (b) => Number(document.querySelector('[data-testid=live-canvas]')?.dataset.seq) > b,
    afterClick,
  );
  await page.waitForTimeout(300);
  await shot('03-device-live');
});

await test('a reservation is held while the page is open and released when it goes', async () => {
  const deviceUrl = page.url();
  const id = deviceUrl.split('/').pop();
  await page.getByRole('button', { name: 'Reserve' }).click();
  await page.getByTestId('reservation').filter({ hasText: 'Reserved by you' }).waitFor();
  const held = await (await fetch(`${base}/api/v1/devices/${id}`, { headers: { Authorization: `Bearer ${key}` } })).json();
  if (!held.reservation?.mine) throw new Error('no reservation: ' + JSON.stringify(held.reservation));
  await shot('03b-device-reserved');
  await page.goto(base + '/#/executions');
  for (let i = 0; ; i++) {
    const d = await (await fetch(`${base}/api/v1/devices/${id}`, { headers: { Authorization: `Bearer ${key}` } })).json();
    if (!d.reservation) break;
    if (i > 50) throw new Error('the reservation outlived the page');
    await new Promise((r) => setTimeout(r, 200));
  }
});

await test('a failing sample run shows its step screenshot next to the reference', async () => {
  await page.goto(base + '/#/testcases/' + encodeURIComponent('Deliberately failing — expects Home while on Settings'));
  await page.getByTestId('problems').filter({ hasText: 'Valid' }).waitFor();
  const option = page.locator('select[aria-label=Device] option', { hasText: 'living room' });
  await option.waitFor({ state: 'attached' });
  await page.getByLabel('Device').selectOption(await option.getAttribute('value'));
  await page.getByRole('button', { name: 'Run' }).click();
  await page.waitForURL(/#\/executions\//);
  await page.locator('h1 .badge').filter({ hasText: 'failed' }).waitFor({ timeout: 90_000 });
  const failing = page.locator('[data-testid=step].step-fail').first();
  await failing.getByRole('button', { name: /Enlarge/ }).click();
  await page.getByTestId('enlarged').waitFor();
  await page.waitForFunction(() => {
    const img = document.querySelector('[data-testid=enlarged]');
    return img && img.naturalWidth > 0;
  });
  await shot('04-execution-failed-step');
  await page.keyboard.press('Escape');
});

await test('the test case editor validates as you type', async () => {
  await page.goto(base + '/#/testcases/new');
  const editor = page.getByLabel('Test case YAML');
  await editor.fill('name: Broken\ndevice_model: sim-stb\nsteps:\n  - teleport: home\n');
  await page.getByTestId('problems').filter({ hasText: 'line 4' }).waitFor();
  await shot('05-editor');
});

await test('a build of a local repository opens a terminal that runs echo hi', async () => {
  await page.goto(base + '/#/builds');
  await page.getByLabel('Repository URL').fill(gitUrl);
  await page.getByRole('button', { name: 'Build and run' }).click();
  await page.waitForURL(/#\/builds\//);
  await page.getByTestId('build-log').filter({ hasText: /Step 1\// }).waitFor({ timeout: 120_000 });
  await page.getByRole('button', { name: 'Open a terminal' }).click({ timeout: 180_000 });
  await page.getByTestId('terminal-status').filter({ hasText: 'connected' }).waitFor();
  await page.getByTestId('terminal').click();
  await page.keyboard.type('echo hi-$((40+2))');
  await page.keyboard.press('Enter');
  await page.locator('.xterm-rows').filter({ hasText: 'hi-42' }).waitFor();
  await shot('06-build-terminal');
  await page.getByRole('button', { name: 'End the session' }).click();
  await page.getByTestId('terminal-status').filter({ hasText: /ended|closed/ }).waitFor();
});

await test('mains power switches a box off and on again', async () => {
  await page.goto(base + '/#/');
  await page.getByRole('link', { name: /bedroom/ }).click();
  await page.getByTestId('power-state').filter({ hasText: 'on' }).waitFor();
  await page.locator('.power').getByRole('button', { name: 'Off' }).click();
  await page.getByTestId('power-state').filter({ hasText: 'off' }).waitFor();
  await page.locator('.power').getByRole('button', { name: 'On' }).click();
  await page.getByTestId('power-state').filter({ hasText: 'on' }).waitFor();
});

await test('dark theme and tablet width', async () => {
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.goto(base + '/#/');
  const before = await page.evaluate(() => document.documentElement.dataset.theme);
  await page.getByRole('button', { name: /Switch to/ }).click();
  const after = await page.evaluate(() => document.documentElement.dataset.theme);
  if (!before || !after || before === after) throw new Error(`theme did not switch: ${before} -> ${after}`);
  await page.getByTestId('device-row').first().waitFor();
  await shot('07-fleet-tablet-theme');
});

await test('no console errors on any page', async () => {
  // WebSockets closed on purpose when leaving a page are not errors.
  const real = consoleErrors.filter((e) => !/WebSocket is closed before the connection is established/.test(e));
  if (real.length) throw new Error(real.join('\n'));
});

await browser.close();
const failed = results.filter((r) => !r.ok);
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed; screenshots in ${out}`);
process.exit(failed.length ? 1 : 0);
