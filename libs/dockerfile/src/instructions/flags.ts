/**
 * BuildKit's instruction flags (`instructions/bflag.go`): each instruction
 * declares the `--flags` it accepts; parsing rejects unknown, duplicate and
 * malformed ones with BuildKit's messages.
 */
import { withSuggestion } from '../go.ts';

type FlagType = 'bool' | 'string' | 'strings';

interface FlagDef {
  type: FlagType;
  value: string;
  values: string[];
}

/** An error about one flag; `index` is the flag's position in the list. */
export class FlagError extends Error {
  readonly index: number;

  constructor(message: string, index: number) {
    super(message);
    this.index = index;
  }
}

export class BFlags {
  readonly #args: readonly string[];
  readonly #flags = new Map<string, FlagDef>();
  readonly #used = new Set<string>();

  constructor(args: readonly string[]) {
    this.#args = args;
  }

  addBool(name: string, def: boolean): void {
    this.#flags.set(name, { type: 'bool', value: def ? 'true' : 'false', values: [] });
  }

  addString(name: string, def: string): void {
    this.#flags.set(name, { type: 'string', value: def, values: [] });
  }

  addStrings(name: string): void {
    this.#flags.set(name, { type: 'strings', value: '', values: [] });
  }

  string(name: string): string {
    return this.#flags.get(name)!.value;
  }

  bool(name: string): boolean {
    return this.#flags.get(name)!.value === 'true';
  }

  strings(name: string): string[] {
    return this.#flags.get(name)!.values;
  }

  isUsed(name: string): boolean {
    return this.#used.has(name);
  }

  /** Names of the flags given, in the order first seen. */
  used(): string[] {
    return [...this.#used];
  }

  /** `BFlags.Parse`; throws FlagError. */
  parse(): void {
    for (const [index, a] of this.#args.entries()) {
      if (a === '--') return;
      if (!a.startsWith('--')) throw new FlagError(`arg should start with -- : ${a}`, index);
      const eq = a.indexOf('=');
      const flagName = eq < 0 ? a : a.slice(0, eq);
      const hasValue = eq >= 0;
      const value = hasValue ? a.slice(eq + 1) : '';
      const name = flagName.slice(2);
      const flag = this.#flags.get(name);
      if (!flag) throw new FlagError(withSuggestion(`unknown flag: ${flagName}`, name, [...this.#flags.keys()].sort(), true), index);
      if (this.#used.has(name) && flag.type !== 'strings') throw new FlagError(`duplicate flag specified: ${flagName}`, index);
      this.#used.add(name);
      switch (flag.type) {
        case 'bool': {
          if (hasValue && value === '') throw new FlagError(`missing a value on flag: ${flagName}`, index);
          const lower = value.toLowerCase();
          if (lower === 'true' || lower === '') flag.value = 'true';
          else if (lower === 'false') flag.value = 'false';
          else throw new FlagError(`expecting boolean value for flag ${flagName}, not: ${value}`, index);
          break;
        }
        case 'string':
          if (!hasValue) throw new FlagError(`missing a value on flag: ${flagName}`, index);
          flag.value = value;
          break;
        case 'strings':
          if (!hasValue) throw new FlagError(`missing a value on flag: ${flagName}`, index);
          flag.values.push(value);
          break;
      }
    }
  }
}
