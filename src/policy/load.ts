/**
 * Reading the policy's files and building a snapshot from them, for
 * start-up (the preflight, before anything listens), `--check-config` and
 * SIGHUP. Reading touches only files, so the preflight runs before the
 * process detaches; building needs the dialer and the resolver, so it runs
 * in `compose`. A file with errors rejects the whole load.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { destinationAuthorizer } from "../acl/destination_authorizer.ts";
import { type HostsAccess, hostsAccessAdmitter, openHostsAccess } from "../acl/hosts_access.ts";
import { internalTargets } from "../acl/internal_targets.ts";
import { compileRules } from "../acl/rules.ts";
import { type ConfigIssue, issueText } from "../config/config_issue.ts";
import { PasswdFile } from "../config/passwd.ts";
import { type DestinationRule, loadRules } from "../config/rules.ts";
import type { Resolver } from "../runtime/resolver.ts";
import type { ClientNameLookup } from "../acl/hosts_access.ts";
import { type AuthBackend, negotiationFor } from "../auth/auth_setup.ts";
import { hasErrors, loadUsersFile, type UsersFile } from "../config/users_file.ts";
import { createSrelayConfRouter } from "../server/srelay_conf_router.ts";
import type { Dialer } from "../upstream/dialer.ts";
import type { Policy } from "./policy.ts";
import { loadRouteConfig, type RouteConfigLoad } from "./route_config.ts";

/** Where the policy's files are. */
export interface PolicyFiles {
  /** srelay.conf (`-c`); `explicit` is false for the compiled-in default. */
  readonly config: { readonly path: string; readonly explicit: boolean };
  /** srelay.passwd (`-u`), or null. */
  readonly passwdFile: string | null;
  /** Destination rules (`--rules`), or null. */
  readonly rulesFile: string | null;
  /** tcp_wrappers tables (`-w`), or null when tcp_wrappers is off. */
  readonly hostsAccess: { readonly allow: string; readonly deny: string } | null;
  /** The user file (`-U`) when passwords are checked against it, or null. */
  readonly usersFile: string | null;
}

/** The policy's files, read and checked. */
export interface PolicyFilesRead {
  readonly routes: RouteConfigLoad;
  readonly passwd: PasswdFile | null;
  /** The destination rules in file order (empty without `--rules`). */
  readonly rules: readonly DestinationRule[] | null;
  /** Where the tcp_wrappers tables are (they are opened, and re-read on change, by `buildPolicy`). */
  readonly hostsAccess: { readonly allow: string; readonly deny: string } | null;
  /** The user file's users, or null without `-U`. */
  readonly users: { readonly path: string; readonly parsed: UsersFile } | null;
}

/** The outcome of reading the policy's files. */
export type PolicyRead =
  | { readonly ok: true; readonly files: PolicyFilesRead; readonly issues: readonly ConfigIssue[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[]; readonly failedFile: string };

/** Reads every policy file; errors (with `file:line`) reject the whole read. */
export function readPolicyFiles(files: PolicyFiles): PolicyRead {
  const routes = loadRouteConfig(files.config.path, files.config.explicit);
  if (!routes.ok) return { ok: false, issues: routes.issues, failedFile: files.config.path };
  const issues: ConfigIssue[] = [...routes.issues];
  let passwd: PasswdFile | null = null;
  if (files.passwdFile !== null) {
    passwd = new PasswdFile(files.passwdFile, {
      onIssue: (issue) => getLogger(["srelay"]).warn("{issue}", { issue: issueText(issue) }),
    });
    const passwdIssues = passwd.refresh();
    const unreadable = passwdIssues.find((issue) => issue.line === 0);
    if (unreadable !== undefined) return { ok: false, issues: [unreadable], failedFile: files.passwdFile };
    issues.push(...passwdIssues);
  }
  let rules: readonly DestinationRule[] | null = null;
  if (files.rulesFile !== null) {
    const loaded = loadRules(files.rulesFile);
    if (!loaded.ok) return { ok: false, issues: loaded.issues, failedFile: files.rulesFile };
    issues.push(...loaded.issues);
    rules = loaded.rules;
  }
  let users: PolicyFilesRead["users"] = null;
  if (files.usersFile !== null) {
    const parsed = loadUsersFile(files.usersFile);
    if (hasErrors(parsed.issues)) return { ok: false, issues: parsed.issues, failedFile: files.usersFile };
    issues.push(...parsed.issues);
    users = { path: files.usersFile, parsed };
  }
  return { ok: true, files: { routes, passwd, rules, hostsAccess: files.hostsAccess, users }, issues };
}

/** What building a policy needs besides the files. */
export interface PolicyDeps {
  /** Dials targets and the nearest hop directly. */
  readonly direct: Dialer;
  /** Resolves names for the second routing stage; null with `--no-route-dns`. */
  readonly routeResolver: Resolver | null;
  /** Resolves domain targets for the destination rules. */
  readonly resolver: Resolver;
  /** Longest wait for one next hop's handshake, in milliseconds. */
  readonly handshakeTimeoutMs: number;
  /** What authentication runs on (`-a`, the hash workers or the host's accounts, the login throttle). */
  readonly auth: AuthBackend;
  /** True when the proxy host's own addresses are blocked by default (exposed, no auth, no `--allow-internal`). */
  readonly blockInternal: boolean;
  /** The client's verified name for tcp_wrappers (`-r`), or undefined. */
  readonly clientName?: ClientNameLookup;
}

/** A built snapshot and the tcp_wrappers tables it holds, for their warnings. */
export interface BuiltPolicy {
  readonly policy: Policy;
  readonly hostsAccess: HostsAccess | null;
}

let isInternal: ((address: string) => boolean) | undefined;

/** Builds a snapshot from files already read. */
export function buildPolicy(files: PolicyFilesRead, deps: PolicyDeps): BuiltPolicy {
  const logger = getLogger(["srelay"]);
  const hostsAccess = files.hostsAccess === null ? null : openHostsAccess({
    allowFile: files.hostsAccess.allow,
    denyFile: files.hostsAccess.deny,
    ...(deps.clientName === undefined ? {} : { clientName: deps.clientName }),
    onReload: (issues) => {
      logger.info("tcp_wrappers tables changed: read {allow} and {deny} again", {
        allow: files.hostsAccess?.allow,
        deny: files.hostsAccess?.deny,
      });
      for (const issue of issues) logger.warn("{issue}", { issue: issueText(issue) });
    },
  });
  const policy: Policy = Object.freeze({
    router: createSrelayConfRouter({
      rules: files.routes.rules,
      direct: deps.direct,
      passwd: files.passwd,
      resolver: deps.routeResolver,
      handshakeTimeoutMs: deps.handshakeTimeoutMs,
    }),
    negotiation: negotiationFor(deps.auth, files.users),
    admitters: hostsAccess === null ? [] : [hostsAccessAdmitter(hostsAccess)],
    authorizer: destinationAuthorizer({
      rules: files.rules === null ? null : compileRules(files.rules),
      blockInternal: deps.blockInternal,
      ...(deps.clientName === undefined ? {} : { clientName: deps.clientName }),
      isInternal: isInternal ??= internalTargets(),
      resolve: (name) => deps.resolver.resolve(name),
    }),
  });
  return { policy, hostsAccess };
}
