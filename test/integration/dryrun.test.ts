/**
 * "dry run logs what it would have done and never rejects" (shield.ini [main] mode)
 * against a hook that runs out of its [hooks] budget.
 */
import assert from 'node:assert/strict';
import { useHaraka } from '../helpers/env';
import { nextSource, session } from '../helpers/smtp';

describe('dry run and a slow DNS (integration)', function () {
  this.timeout(30000);
  const env = useHaraka({
    plugins: ['shield.relay', 'shield.rdns', 'queue/discard'],
    zones: {
      // slow but answering (below the resolver timeout of 500 ms)
      '1.86.18.198.in-addr.arpa': { PTR: ['mx1.example.org'], delayMs: 400 },
      'mx1.example.org': { A: ['198.18.86.1'], delayMs: 400 },
    },
    files: { 'shield.relay.ini': '[main]\ndomains = example.com\n' },
    suite: { main: { mode: 'dryrun' }, hooks: { budget: '200ms' } },
  });

  it('nothing is refused or deferred in dry run, even when a check runs out of its budget', async () => {
    const r = await session({ port: env.haraka.port, localAddress: nextSource(), proxyFrom: '198.18.86.1', helo: 'mx1.example.org', from: 'a@example.org', rcpts: ['b@example.com'] });
    assert.equal(r.rcpts[0]?.code, 250, `dry run sent: ${r.rcpts[0]?.text}`);
    await new Promise((res) => setTimeout(res, 2000));
  });
});
