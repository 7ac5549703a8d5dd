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
});
