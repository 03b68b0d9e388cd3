/**
 * The core's errors are the project's one error class (libs/platform): `ExtenderError` with a
 * stable string `code`, a message that reads as a chain of actions
 * (`failed to extend run image: applying Dockerfile for curl: …`) and the underlying `cause`.
 * The core never decides exit codes: the CLIs map codes to them.
 */
export { ExtenderError, messageOf, wrap, type ErrorCode, type ExtenderErrorOptions } from '@cnb-extender/platform';
