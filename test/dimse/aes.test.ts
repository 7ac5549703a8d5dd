import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';
import { identifyAe, parseAes } from '../../server/dimse/aes.js';

describe('the AE registry', () => {
  it('is off with no port and CAIRN as its title unless configured', () => {
    const c = loadConfig({});
    expect(c.dimse.port).toBeUndefined();
    expect(c.dimse.aeTitle).toBe('CAIRN');
    expect(c.dimse.registry.aes.size).toBe(0);
  });

  it('reads AEs with roles, clearances, address and port from DIMSE_AES', () => {
    const c = loadConfig({ DIMSE_PORT: '11112', DIMSE_AES: '[{"title":"CT1","host":"10.1.2.3","port":104,"roles":["uploader"],"clearances":["vip"]}]' });
    expect(c.dimse.port).toBe(11112);
    const ct = c.dimse.registry.aes.get('CT1');
    expect(ct).toMatchObject({ host: '10.1.2.3', port: 104, principal: { sub: 'ae:CT1', roles: ['uploader'], clearances: ['vip'] } });
  });

  it('refuses an unknown role, a bad title and a duplicate at boot, naming the problem', () => {
    expect(() => loadConfig({ DIMSE_AES: '[{"title":"CT1","roles":["boss"]}]' })).toThrow(/roles/);
    expect(() => loadConfig({ DIMSE_AES: '[{"title":"A\\\\B"}]' })).toThrow(/title/);
    expect(() => loadConfig({ DIMSE_AES: '[{"title":"CT1"},{"title":"CT1"}]' })).toThrow(/twice/);
    expect(() => loadConfig({ DIMSE_AES: 'not json' })).toThrow(/not JSON/);
    // Set but empty, as a compose file leaves a variable: not set, the table is the registry.
    expect(loadConfig({ DIMSE_AES_FILE: '', DIMSE_AES: ' ' }).dimse.aesSource).toBe('database');
  });

  it('refuses an unregistered AE unless a "*" entry gives unregistered callers a principal', () => {
    expect(identifyAe(parseAes('[]'), 'X', '127.0.0.1').ok).toBe(false);
    const r = identifyAe(parseAes('[{"title":"*","roles":["clinician"]}]'), 'X', '127.0.0.1');
    expect(r).toEqual({ ok: true, principal: { sub: 'ae:X', roles: ['clinician'], clearances: [] } });
  });

  it('matches the registered address, an IPv4-mapped IPv6 peer included', () => {
    const reg = parseAes('[{"title":"CT1","host":"10.1.2.3"}]');
    expect(identifyAe(reg, 'CT1', '::ffff:10.1.2.3').ok).toBe(true);
    expect(identifyAe(reg, 'CT1', '10.1.2.4').ok).toBe(false);
  });

  it('comes from the aes table unless DIMSE_AES or DIMSE_AES_FILE is set, read again every 5 s by default', () => {
    expect(loadConfig({}).dimse).toMatchObject({ aesSource: 'database', aesRefreshSeconds: 5 });
    expect(loadConfig({ DIMSE_AES: '  ' }).dimse.aesSource).toBe('database');
    expect(loadConfig({ DIMSE_AES: '[]' }).dimse.aesSource).toBe('configuration');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-aes-')), 'aes.json');
    fs.writeFileSync(file, '[{"title":"PACS","roles":["uploader"]}]');
    const c = loadConfig({ DIMSE_AES_FILE: file, DIMSE_AES_REFRESH_SECONDS: '30' }).dimse;
    expect(c).toMatchObject({ aesSource: 'configuration', aesRefreshSeconds: 30 });
    expect([...c.registry.aes.keys()]).toEqual(['PACS']);
    expect(() => loadConfig({ DIMSE_AES_REFRESH_SECONDS: '-1' })).toThrow(/DIMSE_AES_REFRESH_SECONDS/);
  });

  it('makes an AE with host and port a move destination unless it says moveDestination: false', () => {
    const reg = parseAes(
      '[{"title":"WS1","host":"10.0.0.1","port":104},{"title":"CT1","host":"10.0.0.2","port":104,"moveDestination":false},{"title":"CT2","host":"10.0.0.3"}]',
    );
    expect([...reg.aes.values()].map((ae) => [ae.title, ae.moveDestination])).toEqual([
      ['WS1', true],
      ['CT1', false],
      ['CT2', false],
    ]);
    expect(() => parseAes('[{"title":"CT3","host":"10.0.0.4","moveDestination":true}]')).toThrow(/host and port/);
  });
});
