/**
 * Installing into an existing Haraka instance, the way docs/install.md says: `haraka -i`, npm
 * install of the packed tarball, `haraka-shield install --enable shield.relay`, then a real
 * transaction against that instance.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DnsFixture } from '../helpers/dns-server';
import { ROOT, startHaraka, type HarakaProcess } from '../helpers/haraka';
import { SmtpClient, session } from '../helpers/smtp';

describe('install into an existing Haraka instance (integration)', function () {
  this.timeout(180000);
  let tmp: string;
  let inst: string;
  let haraka: HarakaProcess | undefined;
  let dns: DnsFixture;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shield-install-'));
    inst = path.join(tmp, 'haraka');
    dns = await DnsFixture.start();
  });
  after(async () => {
    await haraka?.stop();
    await dns.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('installs from an npm pack tarball and refuses relay / accepts local mail', async () => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const packed = execFileSync(npm, ['pack', '--silent', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop() as string;
    const tarball = path.join(tmp, packed);
    assert.ok(fs.existsSync(tarball), tarball);

    execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'Haraka', 'bin', 'haraka'), '-i', inst], { stdio: 'ignore' });
    execFileSync(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=dev', tarball], { cwd: inst, stdio: 'ignore' });
    const out = execFileSync(path.join(inst, 'node_modules', '.bin', 'haraka-shield'), ['install', '--enable', 'shield.relay,shield.blocklist'], { cwd: inst, encoding: 'utf8' });
    assert.match(out, /plugins\/shield\.relay\.js -> \.\.\/node_modules\/haraka-shield\/plugins\/shield\.relay\.js/);
    assert.match(out, /config\/shield\.relay\.ini added/);
    assert.match(fs.readFileSync(path.join(inst, 'config', 'plugins'), 'utf8'), /^shield\.relay\nshield\.blocklist$/m);
    assert.match(out, /config\/shield\.blocklist\.block added/);
    // haraka -i's host_list names haraka.local, which rcpt_to.in_host_list accepts: install says how to keep it
    assert.match(out, /^hint: this instance has stock relay\/access config \(config\/host_list\): run haraka-shield import stock to carry it over/m);
    assert.match(out, /^hint: config\/plugins: rcpt_to\.in_host_list is replaced by shield\.relay/m);
    // the copied default makes no domain local (it used to make example.com local)
    assert.deepEqual(fs.readFileSync(path.join(inst, 'config', 'shield.relay.domains'), 'utf8').split('\n').filter((l) => l.trim() && !l.trim().startsWith('#')), []);

    // a second run keeps what the operator changed
    fs.writeFileSync(path.join(inst, 'config', 'shield.relay.domains'), 'example.org\n');
    const again = execFileSync(path.join(inst, 'node_modules', '.bin', 'haraka-shield'), ['install'], { cwd: inst, encoding: 'utf8' });
    assert.match(again, /config\/shield\.relay\.domains kept \(exists\)/);
    assert.equal(fs.readFileSync(path.join(inst, 'config', 'shield.relay.domains'), 'utf8'), 'example.org\n');

    // the stock plugin list of `haraka -i` resolves sender domains through the real DNS: keep ours only
    fs.writeFileSync(path.join(inst, 'config', 'plugins'), 'shield.relay\nshield.blocklist\nqueue/discard\n');
    fs.appendFileSync(path.join(inst, 'config', 'shield.blocklist.block'), '198.18.3.66 install test\n');
    const ini = fs.readFileSync(path.join(inst, 'config', 'shield.ini'), 'utf8').replace(/^nameservers =.*$/m, `nameservers = ${dns.address}`).replace(/^backend = redis$/m, 'backend = memory');
    fs.writeFileSync(path.join(inst, 'config', 'shield.ini'), ini);

    haraka = await startHaraka({ plugins: [], dir: inst });
    const r = await session({
      port: haraka.port,
      localAddress: '127.0.0.201',
      proxyFrom: '198.18.3.1',
      from: 'a@example.net',
      rcpts: ['x@other.example', 'y@example.org'],
      message: 'Subject: t\n\nbody\n',
    });
    assert.equal(r.rcpts[0]?.code, 550);
    assert.match(r.rcpts[0]?.text ?? '', /^550 5\.7\.1 /);
    assert.equal(r.rcpts[1]?.code, 250, r.rcpts[1]?.text);
    assert.equal(r.data?.code, 250, r.data?.text);

    // the installed blocklist and its CLI, run from the instance directory as an operator would
    const blocked = await SmtpClient.connect({ port: haraka.port, localAddress: '127.0.0.202', proxyFrom: '198.18.3.66' });
    await blocked.quit();
    assert.match(blocked.greeting.text, /^554 5\.7\.1 Connection refused: your address 198\.18\.3\.66 /);
    const test = execFileSync(path.join(inst, 'node_modules', '.bin', 'haraka-shield'), ['block', 'test', '198.18.3.66'], { cwd: inst, encoding: 'utf8' });
    assert.match(test, /^client 198\.18\.3\.66: block by ip 198\.18\.3\.66: block ip 198\.18\.3\.66\/32 \(shield\.blocklist\.block:\d+, "install test"\)$/m);
  });
});
