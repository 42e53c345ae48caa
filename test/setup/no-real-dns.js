'use strict';
/*
 * Test guard: any DNS lookup that would leave this machine fails, and is reported.
 * Loaded by mocha (.mocharc.json "require") and, through NODE_OPTIONS, by every Haraka the tests
 * start. UDP may go to loopback only (the fixture DNS server); node:dns may only be used with
 * loopback nameservers; dns.lookup only for localhost and IP literals. A violation is written to
 * stderr and to $SHIELD_DNS_GUARD_LOG; mocha's root hook fails the run if that file is not empty.
 */
const dgram = require('node:dgram');
const dns = require('node:dns');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

if (!process.env.SHIELD_DNS_GUARD_LOG) {
  process.env.SHIELD_DNS_GUARD_LOG = path.join(os.tmpdir(), `shield-dns-guard-${process.pid}.log`);
  fs.writeFileSync(process.env.SHIELD_DNS_GUARD_LOG, '');
}
const LOG = process.env.SHIELD_DNS_GUARD_LOG;

function isLoopback(host) {
  const h = String(host).replace(/^\[|\]$/g, '').replace(/^::ffff:/i, '');
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

function violation(what) {
  const line = `REAL-DNS-LOOKUP blocked in pid ${process.pid}: ${what}\n`;
  try {
    fs.appendFileSync(LOG, line);
  } catch {
    /* ignore */
  }
  process.stderr.write(line);
  const err = new Error(`test guard: ${what} would reach a real DNS server`);
  err.code = 'ECONNREFUSED';
  return err;
}

const origSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (msg, ...args) {
  // send(msg, [offset, length,] port, [address,] [callback])
  const nums = args.filter((a) => typeof a === 'number');
  const port = nums.length >= 3 ? nums[2] : nums[0];
  const address = args.find((a) => typeof a === 'string');
  if (address && !isLoopback(address)) throw violation(`UDP to ${address}:${port}`);
  return origSend.call(this, msg, ...args);
};

// a connected socket (the suite's resolver connects one per query) sends without an address
const origConnect = dgram.Socket.prototype.connect;
dgram.Socket.prototype.connect = function (port, address, ...rest) {
  if (typeof address === 'string' && !isLoopback(address)) throw violation(`UDP to ${address}:${port}`);
  return origConnect.call(this, port, address, ...rest);
};

function serversOk(servers) {
  return servers.every((s) => isLoopback(s.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')));
}

const resolverMethods = ['resolve', 'resolve4', 'resolve6', 'resolveAny', 'resolveCname', 'resolveMx', 'resolveNs', 'resolveTxt', 'resolveSrv', 'resolvePtr', 'resolveNaptr', 'resolveSoa', 'resolveCaa', 'reverse'];
for (const proto of [dns.Resolver.prototype, dns.promises.Resolver.prototype]) {
  for (const m of resolverMethods) {
    const orig = proto[m];
    if (typeof orig !== 'function') continue;
    proto[m] = function (...args) {
      if (!serversOk(this.getServers())) {
        const err = violation(`node:dns Resolver.${m}(${args[0]}) via ${this.getServers().join(',')}`);
        const cb = args.find((a) => typeof a === 'function');
        if (cb) return process.nextTick(cb, err);
        return Promise.reject(err);
      }
      return orig.apply(this, args);
    };
  }
}
for (const mod of [dns, dns.promises]) {
  for (const m of resolverMethods) {
    const orig = mod[m];
    if (typeof orig !== 'function') continue;
    mod[m] = function (...args) {
      if (!serversOk(dns.getServers())) {
        const err = violation(`node:dns ${m}(${args[0]})`);
        const cb = args.find((a) => typeof a === 'function');
        if (cb) return process.nextTick(cb, err);
        return Promise.reject(err);
      }
      return orig.apply(this, args);
    };
  }
  const origLookup = mod.lookup;
  mod.lookup = function (host, ...args) {
    if (host && !net.isIP(String(host)) && !isLoopback(host)) {
      const err = violation(`dns.lookup(${host})`);
      const cb = args.find((a) => typeof a === 'function');
      if (cb) return process.nextTick(cb, err);
      return Promise.reject(err);
    }
    return origLookup.call(this, host, ...args);
  };
}

exports.mochaHooks = {
  afterAll() {
    const seen = fs.existsSync(LOG) ? fs.readFileSync(LOG, 'utf8') : '';
    if (seen.trim()) throw new Error(`tests tried to reach a real DNS server:\n${seen}`);
  },
};
