/**
 * Where the command line says the policy's files are.
 *
 * @module
 */
import { exposed } from "../acl/internal_targets.ts";
import type { ListenAddress } from "../cli/listen_address.ts";
import type { CliOptions } from "../cli/options.ts";
import type { PolicyFiles } from "../policy/load.ts";

/** The policy files `options` name. */
export function policyFiles(options: CliOptions): PolicyFiles {
  return {
    config: options.config,
    passwdFile: options.passwdFile,
    rulesFile: options.rulesFile,
    hostsAccess: options.tcpWrappers,
    usersFile: options.authMethods.includes("password") ? options.usersFile : null,
  };
}

/**
 * True when clients may not reach the proxy host itself by default: some
 * listener is not loopback (or PROXY protocol brings clients from
 * anywhere), no authentication is required, and `--allow-internal` is not
 * given.
 */
export function blocksInternal(options: CliOptions, listen: readonly ListenAddress[]): boolean {
  if (options.allowInternal) return false;
  // Behind a load balancer (--proxy-protocol) clients come from anywhere, whatever the listener's address.
  const hosts = options.proxyProtocol !== null ? [{ host: "::" }] : listen.map((spec) => ({ host: spec.host ?? "::" }));
  return exposed(hosts, !options.authMethods.includes("none"));
}
