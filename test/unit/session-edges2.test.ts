/** openSession's whole answer for each case, not only the flag each other test looks at. */
import assert from 'node:assert/strict';
import type { HarakaConnection } from '../../plugins/shield/core/haraka';
import { openSession } from '../../plugins/shield/core/session';

function conn(ip = '198.18.0.1'): HarakaConnection {
  return {
    uuid: 'U-2',
    remote: { ip, port: 4000, host: null, is_private: false, is_local: false },
    local: { ip: '198.18.255.25', port: 25, host: 'mx' },
    notes: { proxy: { src_ip: ip } },
    transaction: null,
  } as unknown as HarakaConnection;
}

describe('Session: openSession answers (2)', () => {
  it('first open: fresh, not re-announced; a repeat: neither; a new announcement: re-announced, not fresh', () => {
    const c = conn();
    const a = openSession(c);
    assert.deepEqual({ fresh: a.fresh, reannounced: a.reannounced }, { fresh: true, reannounced: false });
    const b = openSession(c);
    assert.deepEqual({ fresh: b.fresh, reannounced: b.reannounced }, { fresh: false, reannounced: false });
    assert.equal(b.session, a.session);
    c.notes.proxy = { src_ip: '198.18.0.1' };
    const r = openSession(c);
    assert.deepEqual({ fresh: r.fresh, reannounced: r.reannounced }, { fresh: false, reannounced: true });
    assert.equal(r.session, a.session, 'the pinned session stays');
    const again = openSession(c);
    assert.deepEqual({ fresh: again.fresh, reannounced: again.reannounced }, { fresh: false, reannounced: true });
  });
});
