'use strict';
/*
 * Mutation testing only (stryker.config.json, mochaOptions.require, after test/setup/no-real-dns.js).
 * The real-DNS guard appends each violation to $SHIELD_DNS_GUARD_LOG and its root afterAll hook fails
 * the run while that file is not empty. Under `mocha` that file lives for one run; a Stryker test
 * runner process runs mocha once per mutant, so a single mutant that reached for a real DNS server
 * would fail every later run in that process and count every later mutant as killed. Empty the log
 * at the start of each run, so a violation fails (kills) only the mutant that caused it.
 */
const fs = require('node:fs');

exports.mochaHooks = {
  beforeAll() {
    const log = process.env.SHIELD_DNS_GUARD_LOG;
    if (log) fs.writeFileSync(log, '');
  },
};
