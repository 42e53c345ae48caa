/**
 * the plugin handle's decide() against the documented rule "an err never carries a
 * score" (docs/development.md, docs/configuration.md).
 */
import assert from 'node:assert/strict';
import type { HarakaConnection, HarakaPlugin } from '../../plugins/shield/core/haraka';
import { reply } from '../../plugins/shield/core/policy';
import { sessionOf } from '../../plugins/shield/core/session';
import { resetSuite, setupShield } from '../../plugins/shield/core/suite';

function fakePlugin(name: string): HarakaPlugin {
  return {
    name,
    config: { get: () => ({}) },
    register_hook: () => undefined,
    inherits: () => undefined,
    logdebug: () => undefined,
    loginfo: () => undefined,
    lognotice: () => undefined,
    logwarn: () => undefined,
    logerror: () => undefined,
    logcrit: () => undefined,
  } as unknown as HarakaPlugin;
}

function conn(): HarakaConnection {
  return {
    uuid: 'REVIEW-1',
    remote: { ip: '198.18.0.9', port: 4000, host: null, is_private: false, is_local: false },
    local: { ip: '198.18.255.25', port: 25, host: 'mx' },
    notes: {},
    results: { add: () => undefined, get: () => undefined },
    transaction: null,
    lognotice: () => undefined,
  } as unknown as HarakaConnection;
}

describe('decide() and scores of err evidence', () => {
  afterEach(() => resetSuite());

  it('an err whose action is tag adds nothing to the suite score (docs: "an err never carries a score")', () => {
    const shield = setupShield(fakePlugin('shield.example'), 'example');
    const c = conn();
    const r = reply(550, '5.7.1', 'x');
    shield.decide(c, { check: 'example', outcome: 'err', reason: 'dns_error', score: 5 }, { fail: 'tag', err: 'tag' }, { reject: r, defer: reply(451, '4.7.1', 'x') });
    assert.equal(sessionOf(c).score, 0, `an err added ${sessionOf(c).score} to the score`);
  });
});
