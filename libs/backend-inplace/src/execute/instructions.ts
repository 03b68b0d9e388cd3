/**
 * The instructions the executor understands, as typed data. Words are as
 * written (not yet expanded): the executor expands them with the ARG/ENV
 * state in effect at that point, as Docker does. RUN, CMD and ENTRYPOINT are
 * never expanded by the builder (the shell does that).
 */
export type Instruction =
  | RunInstruction
  | CopyInstruction
  | { kind: 'ENV'; original: string; pairs: [string, string][] }
  | { kind: 'ARG'; original: string; args: { name: string; default?: string }[] }
  | { kind: 'LABEL'; original: string; pairs: [string, string][] }
  | { kind: 'USER'; original: string; user: string }
  | { kind: 'WORKDIR'; original: string; path: string }
  | { kind: 'SHELL'; original: string; shell: string[] }
  | { kind: 'CMD' | 'ENTRYPOINT'; original: string; form: 'shell' | 'exec'; command: string | string[] }
  | { kind: 'EXPOSE'; original: string; ports: string[] }
  | { kind: 'VOLUME'; original: string; paths: string[] }
  | { kind: 'STOPSIGNAL'; original: string; signal: string }
  | { kind: 'MAINTAINER'; original: string; name: string }
  | { kind: 'ONBUILD'; original: string; expression: string }
  | { kind: 'HEALTHCHECK'; original: string; test: string[] | null; interval?: number; timeout?: number; startPeriod?: number; retries?: number };

export interface RunInstruction {
  kind: 'RUN';
  /** The instruction as it reads in the Dockerfile (`RUN apt-get update`): history and errors use it. */
  original: string;
  form: 'shell' | 'exec';
  /** Shell form: the command string; exec form: argv. */
  command: string | string[];
  /** `--network=none|host|default`; when absent the executor's default applies. */
  network?: 'none' | 'host' | 'default';
}

export interface CopyInstruction {
  kind: 'COPY' | 'ADD';
  original: string;
  sources: string[];
  dest: string;
  chown?: string;
  chmod?: string;
  /** COPY --from: other stages and images are not available to an extension. */
  from?: string;
}
