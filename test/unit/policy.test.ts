import assert from 'node:assert/strict';
import { ACTIONS, decide, formatReply, reply } from '../../plugins/shield/core/policy';

const replies = { reject: reply(550, '5.7.1', 'listed'), defer: reply(451, '4.7.1', 'try later') };
const ev = (outcome: 'pass' | 'fail' | 'skip' | 'err') => ({ check: 't', outcome, reason: 'r' });

describe('policy', () => {
  it('maps fail and err to the configured action and its reply', () => {
    assert.equal(formatReply(decide(ev('fail'), { fail: 'reject', err: 'defer' }, 'enforce', replies).reply!), '550 5.7.1 listed');
    assert.equal(formatReply(decide(ev('fail'), { fail: 'defer', err: 'defer' }, 'enforce', replies).reply!), '451 4.7.1 try later');
    assert.equal(formatReply(decide(ev('err'), { fail: 'reject', err: 'defer' }, 'enforce', replies).reply!), '451 4.7.1 try later');
    assert.equal(decide(ev('err'), { fail: 'reject', err: 'ignore' }, 'enforce', replies).reply, null);
    assert.equal(decide(ev('fail'), { fail: 'tag', err: 'ignore' }, 'enforce', replies).action, 'tag');
    assert.equal(decide(ev('pass'), { fail: 'reject', err: 'reject' }, 'enforce', replies).reply, null);
    assert.equal(decide(ev('skip'), { fail: 'reject', err: 'reject' }, 'enforce', replies).reply, null);
  });

  it('offers exactly the four actions a config may name', () => {
    assert.deepEqual([...ACTIONS], ['reject', 'defer', 'tag', 'ignore']);
  });

  it('never turns an infrastructure error into a permanent rejection', () => {
    const d = decide(ev('err'), { fail: 'reject', err: 'reject' }, 'enforce', replies);
    assert.equal(d.action, 'defer');
    assert.equal(d.reply?.code, 451);
  });

  it('dry run sends nothing but says what it would have sent', () => {
    const d = decide(ev('fail'), { fail: 'reject', err: 'defer' }, 'dryrun', replies);
    assert.equal(d.reply, null);
    assert.equal(d.wouldSend?.code, 550);
  });

  it('refuses a reply whose code and status classes differ', () => {
    assert.throws(() => reply(550, '4.7.1', 'x'), /classes differ/);
  });
});
