import { describe, expect, it } from 'vitest';
import { hashSecret, newUserKey } from '../auth/secrets.js';
import { T0 } from '../testing/harness.js';
import { storeKinds } from './testing/store-kinds.js';
import type { Store } from './types.js';

/** The same suite for SQLite and PostgreSQL: users' external ids and keys' refusal styles. */
const kinds = storeKinds();

const person = (id: string, externalIds?: string[]) => ({ id, name: id.toUpperCase(), projectId: null, ...(externalIds ? { externalIds } : {}) });

async function keyFor(store: Store, userId: string, id: string, refusalStyle?: 'error' | 'answer' | null) {
  const { secret, prefix } = newUserKey();
  const created = await store.createKey(
    { id, userId, name: 'k', service: false, ...(refusalStyle === undefined ? {} : { refusalStyle }), secretHash: hashSecret(secret), prefix },
    T0,
  );
  return { secret, created };
}

describe.each(kinds)('$name store: external ids', ({ open }) => {
  it('creates a user with external ids, and every read returns them sorted', async () => {
    const store = await open();
    const created = await store.createUser(person('alice', ['user_2b', 'user_2a', 'user_2b']), T0);
    expect(created).toEqual({ ok: true, value: { id: 'alice', name: 'ALICE', projectId: null, createdAt: T0, externalIds: ['user_2a', 'user_2b'] } });
    await store.createUser(person('bob'), T0);
    expect(await store.getUser('alice')).toMatchObject({ id: 'alice', externalIds: ['user_2a', 'user_2b'] });
    expect((await store.listUsers()).map((u) => [u.id, u.externalIds])).toEqual([
      ['alice', ['user_2a', 'user_2b']],
      ['bob', []],
    ]);
    expect(await store.findUserByExternalId('user_2b')).toMatchObject({ id: 'alice', externalIds: ['user_2a', 'user_2b'] });
    expect(await store.findUserByExternalId('user_2c')).toBeNull();
  });

  it('refuses a new user whose external id is another user’s, and creates nothing', async () => {
    const store = await open();
    await store.createUser(person('alice', ['user_2a']), T0);
    expect(await store.createUser(person('bob', ['user_2z', 'user_2a']), T0)).toEqual({ ok: false, reason: 'exists', field: 'externalIds', value: 'user_2a' });
    expect(await store.getUser('bob')).toBeNull();
    expect(await store.findUserByExternalId('user_2z')).toBeNull();
    // A taken user id is refused on the id, before any external id is looked at.
    expect(await store.createUser(person('alice', ['user_2q']), T0)).toEqual({ ok: false, reason: 'exists', field: 'id' });
    expect(await store.findUserByExternalId('user_2q')).toBeNull();
  });

  it('links an external id to one user only; linking it again to the same user changes nothing', async () => {
    const store = await open();
    await store.createUser(person('alice'), T0);
    await store.createUser(person('bob'), T0);
    const first = await store.linkExternalId('alice', 'user_2a', T0);
    expect(first).toEqual({ ok: true, changed: true, user: expect.objectContaining({ id: 'alice', externalIds: ['user_2a'] }) });
    expect(await store.linkExternalId('alice', 'user_2a', T0)).toMatchObject({ ok: true, changed: false, user: { externalIds: ['user_2a'] } });
    expect(await store.linkExternalId('bob', 'user_2a', T0)).toEqual({ ok: false, reason: 'taken', userId: 'alice' });
    expect(await store.linkExternalId('carol', 'user_2c', T0)).toEqual({ ok: false, reason: 'missing-user' });
    expect((await store.getUser('bob'))?.externalIds).toEqual([]);
  });

  it('unlinks only the user’s own link; the id is then free for another user', async () => {
    const store = await open();
    await store.createUser(person('alice', ['user_2a']), T0);
    await store.createUser(person('bob'), T0);
    expect(await store.unlinkExternalId('bob', 'user_2a')).toEqual({ ok: false, reason: 'taken', userId: 'alice' });
    expect(await store.unlinkExternalId('bob', 'user_2x')).toEqual({ ok: false, reason: 'not-linked' });
    expect(await store.unlinkExternalId('carol', 'user_2a')).toEqual({ ok: false, reason: 'missing-user' });
    expect(await store.unlinkExternalId('alice', 'user_2a')).toMatchObject({ ok: true, changed: true, user: { id: 'alice', externalIds: [] } });
    expect(await store.findUserByExternalId('user_2a')).toBeNull();
    expect(await store.linkExternalId('bob', 'user_2a', T0)).toMatchObject({ ok: true, changed: true });
  });

  it('two links of one external id at once: one user gets it, the other is told who has it', async () => {
    const store = await open();
    await store.createUser(person('alice'), T0);
    await store.createUser(person('bob'), T0);
    const results = await Promise.all([store.linkExternalId('alice', 'user_2a', T0), store.linkExternalId('bob', 'user_2a', T0)]);
    const winners = results.filter((r) => r.ok);
    expect(winners).toHaveLength(1);
    const winner = winners[0]?.ok ? winners[0].user.id : '';
    expect(results.find((r) => !r.ok)).toEqual({ ok: false, reason: 'taken', userId: winner });
  });

  it('a name resolves to the user linked to it as an external id first, then to the user with that id', async () => {
    const store = await open();
    await store.createUser(person('user_2a'), T0); // e.g. created on first sight, before anyone linked the id
    await store.createUser({ id: 'alice', name: 'Alice', projectId: null }, T0);
    expect(await store.findNamedUser('user_2a')).toEqual({ id: 'user_2a', name: 'USER_2A', projectId: null, createdAt: T0 });
    await store.linkExternalId('alice', 'user_2a', T0);
    expect(await store.findNamedUser('user_2a')).toEqual({ id: 'alice', name: 'Alice', projectId: null, createdAt: T0 });
    expect(await store.findNamedUser('alice')).toMatchObject({ id: 'alice' });
    expect(await store.findNamedUser('nobody')).toBeNull();
    // The user that had the id keeps existing (and its history); only the name now means alice.
    expect(await store.getUser('user_2a')).toMatchObject({ id: 'user_2a', externalIds: [] });
  });

  it('concurrent creations of one new user: exactly one is created, the others are told it exists', async () => {
    const store = await open();
    const results = await Promise.all(Array.from({ length: 5 }, () => store.createUser(person('user_2new'), T0)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok)).toEqual(Array.from({ length: 4 }, () => ({ ok: false, reason: 'exists', field: 'id' })));
    expect((await store.listUsers()).map((u) => u.id)).toEqual(['user_2new']);
  });
});

describe.each(kinds)('$name store: a key’s refusal style', ({ open }) => {
  it('is null unless given, is stored as given, and every read returns it', async () => {
    const store = await open();
    await store.createUser(person('alice'), T0);
    const plain = await keyFor(store, 'alice', 'key_plain');
    const answer = await keyFor(store, 'alice', 'key_answer', 'answer');
    expect(plain.created).toMatchObject({ ok: true, value: { id: 'key_plain', refusalStyle: null } });
    expect(answer.created).toMatchObject({ ok: true, value: { id: 'key_answer', refusalStyle: 'answer' } });
    expect((await store.listKeys()).map((k) => [k.id, k.refusalStyle]).sort()).toEqual([
      ['key_answer', 'answer'],
      ['key_plain', null],
    ]);
    expect((await store.getKey('key_answer'))?.refusalStyle).toBe('answer');
    expect((await store.findKeyByHash(hashSecret(answer.secret)))?.key.refusalStyle).toBe('answer');
  });

  it('changes, and the next identity lookup of the key (what the proxy reads) has the new style', async () => {
    const store = await open();
    await store.createUser(person('alice'), T0);
    const { secret } = await keyFor(store, 'alice', 'key_a');
    expect((await store.findKeyByHash(hashSecret(secret)))?.key.refusalStyle).toBeNull(); // now cached where the store caches
    expect(await store.setKeyRefusalStyle('key_a', 'answer')).toMatchObject({ id: 'key_a', refusalStyle: 'answer' });
    expect((await store.findKeyByHash(hashSecret(secret)))?.key.refusalStyle).toBe('answer');
    expect(await store.setKeyRefusalStyle('key_a', 'error')).toMatchObject({ refusalStyle: 'error' });
    expect(await store.setKeyRefusalStyle('key_a', null)).toMatchObject({ refusalStyle: null });
    expect((await store.findKeyByHash(hashSecret(secret)))?.key.refusalStyle).toBeNull();
    expect(await store.setKeyRefusalStyle('key_nope', 'answer')).toBeNull();
  });
});
