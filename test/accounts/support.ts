import { afterAll, expect } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { NO_ORIGIN } from '../../src/events/types.js';
import { newId } from '../../src/ids.js';
import { PasswordHasher } from '../../src/users/passwords.js';
import { type SmtpInbox, startSmtpInbox } from '../helpers/smtpInbox.js';
import { AUTH_FIELDS, bearer, createTestServer, LOGIN, TEST_PASSWORD, type TestServer, uniqueEmail } from '../helpers/testServer.js';

/** What the account tests share: a real SMTP inbox, gateways that mail to it, and the operations. */

export const ACCOUNT_AUTH_FIELDS = `${AUTH_FIELDS.replace('user { id email roles createdAt }', 'user { id email roles createdAt emailVerified disabled hasPassword }')}`;

export const OPS = {
  requestReset: `mutation($email: String!) { requestPasswordReset(email: $email) }`,
  reset: `mutation($token: String!, $password: String!) { resetPassword(token: $token, newPassword: $password) { ${ACCOUNT_AUTH_FIELDS} } }`,
  requestVerification: `mutation { requestEmailVerification }`,
  verify: `mutation($token: String!) { verifyEmail(token: $token) { id email emailVerified } }`,
  reauth: `mutation($password: String!) { reauthenticate(password: $password) { ${ACCOUNT_AUTH_FIELDS} } }`,
  changePassword: `mutation($password: String!) { changePassword(newPassword: $password) }`,
  requestEmailChange: `mutation($email: String!) { requestEmailChange(newEmail: $email) }`,
  confirmEmailChange: `mutation($token: String!) { confirmEmailChange(token: $token) { id email emailVerified } }`,
  deleteAccount: `mutation { deleteAccount }`,
  me: `{ me { id email roles emailVerified disabled hasPassword } }`,
  login: LOGIN,
  disable: `mutation($id: ID!) { disableUser(id: $id) { id disabled } }`,
  enable: `mutation($id: ID!) { enableUser(id: $id) { id disabled } }`,
  setRoles: `mutation($id: ID!, $roles: [String!]!) { setUserRoles(id: $id, roles: $roles) { id roles } }`,
  revokeUserSessions: `mutation($id: ID!) { revokeUserSessions(id: $id) }`,
  deleteUser: `mutation($id: ID!) { deleteUser(id: $id) }`,
  user: `query($id: ID!) { user(id: $id) { id email roles disabled } }`,
  users: `query($first: Int, $after: String, $prefix: String) { users(first: $first, after: $after, emailPrefix: $prefix) { nodes { id email } endCursor hasNextPage } }`,
  userSessions: `query($id: ID!) { userSessions(id: $id) { id current } }`,
  refresh: `mutation($t: String) { refreshToken(refreshToken: $t) { ${ACCOUNT_AUTH_FIELDS} } }`,
};

let inboxPromise: Promise<SmtpInbox> | undefined;
const servers: TestServer[] = [];

/** One real SMTP server for the file. */
export function inbox(): Promise<SmtpInbox> {
  return (inboxPromise ??= startSmtpInbox());
}

afterAll(async () => {
  for (const server of servers.splice(0)) await server.close();
  if (inboxPromise) await (await inboxPromise).close();
});

/** A gateway on `store` that mails to the inbox (closed after the file). */
export async function gateway(store: 'memory' | 'redis', env: Record<string, string> = {}, clock?: Clock): Promise<TestServer> {
  const mailbox = await inbox();
  const server = await createTestServer({ store, env: { ...mailbox.env, ...env }, ...(clock ? { clock } : {}) });
  servers.push(server);
  return server;
}

export type Account = { email: string; id: string; accessToken: string; refreshToken: string; sessionId: string };

/** Signs up (taking the verification mail out of the inbox when one is sent). */
export async function account(server: TestServer, email = uniqueEmail(), password = TEST_PASSWORD): Promise<Account> {
  const answer = await server.graphql(`mutation($email: String!, $password: String!) { signup(email: $email, password: $password) { ${ACCOUNT_AUTH_FIELDS} } }`, { email, password });
  expect(answer.errors).toEqual([]);
  const p = answer.data!.signup;
  return { email, id: p.user.id, accessToken: p.accessToken, refreshToken: p.refreshToken, sessionId: p.session.id };
}

export async function login(server: TestServer, email: string, password = TEST_PASSWORD) {
  return server.graphql(LOGIN, { email, password });
}

/** An admin made at the store, as `tessera users add --roles admin` does, then logged in. */
export async function adminAccount(server: TestServer): Promise<Account> {
  const email = uniqueEmail();
  const hasher = await PasswordHasher.create();
  const id = newId();
  await server.store.createUser(
    { id, email, passwordHash: await hasher.hash(TEST_PASSWORD), roles: ['user', 'admin'], createdAt: Date.now(), emailVerified: true, disabled: false },
    NO_ORIGIN,
  );
  const answer = await login(server, email);
  expect(answer.errors).toEqual([]);
  const p = answer.data!.login;
  return { email, id, accessToken: p.accessToken, refreshToken: p.refreshToken, sessionId: p.session.id };
}

export { bearer, TEST_PASSWORD, uniqueEmail };

/** The error of a one-field answer. */
export function errorOf(answer: { errors: { extensions: Record<string, unknown> }[] }) {
  expect(answer.errors).toHaveLength(1);
  // Outside production Apollo adds a stack trace; the contract's fields are the rest.
  const { stacktrace: _stack, ...extensions } = answer.errors[0]!.extensions;
  return extensions;
}

const SUBJECTS = {
  password_reset: 'Reset your',
  email_verification: 'Confirm your email address',
  email_change: 'Confirm your new email address',
  email_change_notice: 'email address is being changed',
  password_changed: 'password was changed',
  new_sign_in: 'New sign-in',
} as const;

const taken = new Set<unknown>();

/** The oldest mail of a kind to `address` not yet returned, read from the real SMTP server (waits for it). */
export async function mailOf(address: string, kind: keyof typeof SUBJECTS, timeoutMs = 10_000) {
  const mailbox = await inbox();
  const find = () => mailbox.mailsTo(address).find((mail) => mail.subject.includes(SUBJECTS[kind]) && !taken.has(mail));
  await mailbox.waitFor(() => find() !== undefined, timeoutMs, `a ${kind} mail to ${address}`);
  const mail = find()!;
  taken.add(mail);
  return mail;
}

/** The mails of a kind that reached `address` so far. */
export async function mailsOf(address: string, kind: keyof typeof SUBJECTS) {
  return (await inbox()).mailsTo(address).filter((mail) => mail.subject.includes(SUBJECTS[kind]));
}
