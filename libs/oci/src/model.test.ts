import { describe, expect, it } from 'vitest';
import { sha256 } from './digest.ts';
import { canonicalJson } from './model.ts';

describe('canonicalJson', () => {
  it('sorts keys at every depth, keeps array order, drops undefined, adds no whitespace', () => {
    const a = { b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined }, labels: { 'org.b': 'x', 'org.a': 'y' } };
    expect(canonicalJson(a)).toBe('{"a":{"d":[3,{"y":2,"z":1}]},"b":1,"labels":{"org.a":"y","org.b":"x"}}');
  });

  it('gives the same digest however an object was assembled', () => {
    const one = { architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], Labels: { x: '1', y: '2' } } };
    const two = { config: { Labels: { y: '2', x: '1' }, Env: ['A=1'] }, os: 'linux', architecture: 'amd64' };
    expect(sha256(canonicalJson(one))).toBe(sha256(canonicalJson(two)));
  });
});
