import { startTestApp, bearer } from '../apps/api/src/testing/test-app.js';
import { pino } from 'pino';
const t = await startTestApp();
const k = await t.createKey('p');
for (const u of ['/v1/jobs/%00', '/v1/jobs?after=%00', '/v1/jobs?metadata.team=%00']) {
  const r = await fetch(t.url + u, { headers: bearer(k) });
  console.log(u, r.status, await r.text());
}
await t.close();
