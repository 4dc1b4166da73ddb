import { gql, type TypedDocumentNode } from '@apollo/client';
import { useApolloClient, useMutation, useQuery } from '@apollo/client/react';
import type { AuthClient, Session, SessionEnded } from '@tessera-gateway/client';
import { type FormEvent, useEffect, useState, useSyncExternalStore } from 'react';

interface MeData {
  me: { id: string; email: string; roles: string[]; createdAt: string } | null;
}
interface SessionsData {
  sessions: { id: string; createdAt: string; lastRefreshedAt: string; userAgent: string | null; ipAddress: string | null; current: boolean }[];
}

const ME: TypedDocumentNode<MeData> = gql`
  query Me {
    me {
      id
      email
      roles
      createdAt
    }
  }
`;
const SESSIONS: TypedDocumentNode<SessionsData> = gql`
  query Sessions {
    sessions {
      id
      createdAt
      lastRefreshedAt
      userAgent
      ipAddress
      current
    }
  }
`;
const REVOKE: TypedDocumentNode<{ revokeSession: boolean }, { id: string }> = gql`
  mutation Revoke($id: ID!) {
    revokeSession(sessionId: $id)
  }
`;

const ENDED_TEXT: Record<SessionEnded['reason'], string> = {
  LOGGED_OUT: 'You logged out',
  REFRESH_TOKEN_INVALID: 'Your session ended (revoked or logged out elsewhere)',
  REFRESH_TOKEN_EXPIRED: 'Your session expired',
  REFRESH_TOKEN_REUSED: 'Your session was ended because its refresh token was used twice',
  SESSION_REVOKED: 'Your session was revoked',
  TOKEN_INVALID: 'Your session could not be read',
};

const time = (ms: number | string) => new Date(ms).toLocaleTimeString('en-GB', { hour12: false });

/** The auth client's session as React state. */
function useSession(auth: AuthClient): Session | null {
  return useSyncExternalStore(
    (onChange) => auth.onChange(onChange),
    () => auth.session,
  );
}

export function App({ auth }: { auth: AuthClient }) {
  const session = useSession(auth);
  const apollo = useApolloClient();
  const [restored, setRestored] = useState(false);
  const [ended, setEnded] = useState<SessionEnded | null>(null);

  useEffect(() => {
    void auth.restore().finally(() => setRestored(true));
    return auth.onSessionEnded((event) => {
      setEnded(event);
      void apollo.clearStore();
    });
  }, [auth, apollo]);

  if (!restored) return <main><p data-testid="status">Loading…</p></main>;
  return (
    <main>
      <header>
        <h1>Tessera example</h1>
        <small>
          {auth.url} · refresh token in {auth.transport === 'cookie' ? 'an HttpOnly cookie' : 'localStorage (body mode)'}
        </small>
      </header>
      {session ? <SignedIn auth={auth} session={session} /> : <SignedOut auth={auth} ended={ended} onSignedIn={() => setEnded(null)} />}
    </main>
  );
}

function SignedOut({ auth, ended, onSignedIn }: { auth: AuthClient; ended: SessionEnded | null; onSignedIn: () => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = (action: 'login' | 'signup') => async (event?: FormEvent) => {
    event?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await auth[action]({ email, password });
      onSignedIn();
    } catch (caught) {
      setError((caught as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="signed-out">
      <p data-testid="status" className="status out">
        Signed out
      </p>
      {ended && (
        <p data-testid="ended" className="notice">
          {ENDED_TEXT[ended.reason]}
          {ended.fromOtherTab ? ' (in another tab)' : ''}.
        </p>
      )}
      <form onSubmit={submit('login')}>
        <label>
          Email <input name="email" type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} required />
        </label>
        <label>
          Password <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        <div className="buttons">
          <button type="submit" disabled={busy}>
            Log in
          </button>
          <button type="button" disabled={busy} onClick={() => void submit('signup')()}>
            Sign up
          </button>
        </div>
      </form>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </section>
  );
}

function SignedIn({ auth, session }: { auth: AuthClient; session: Session }) {
  const me = useQuery(ME, { fetchPolicy: 'network-only' });
  const sessions = useQuery(SESSIONS, { fetchPolicy: 'network-only' });
  const [revoke] = useMutation(REVOKE);
  const [renewals, setRenewals] = useState(0);
  const [busy, setBusy] = useState(false);

  // Each new access token of this session (refreshed here or by another tab) counts as a renewal.
  const [seen, setSeen] = useState(session.expiresAt);
  if (session.expiresAt !== seen) {
    setSeen(session.expiresAt);
    setRenewals(renewals + 1);
  }

  const act = (work: () => Promise<unknown>) => async () => {
    setBusy(true);
    try {
      await work();
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="signed-in">
      <p data-testid="status" className="status in">
        Signed in{me.data?.me ? ` as ${me.data.me.email}` : ''}
      </p>
      <p data-testid="token" className="token">
        Access token valid until {time(session.expiresAt)} · renewed {renewals}× while this tab was open
      </p>
      <div className="buttons">
        <button onClick={act(() => me.refetch())} disabled={busy}>
          Reload me
        </button>
        <button onClick={act(() => auth.logout())} disabled={busy}>
          Log out
        </button>
        <button onClick={act(() => auth.logoutEverywhere())} disabled={busy}>
          Log out everywhere
        </button>
      </div>

      <h2>Me</h2>
      {me.error ? (
        <p className="error">{me.error.message}</p>
      ) : me.data?.me ? (
        <dl data-testid="me">
          <dt>id</dt>
          <dd>{me.data.me.id}</dd>
          <dt>email</dt>
          <dd>{me.data.me.email}</dd>
          <dt>roles</dt>
          <dd>{me.data.me.roles.join(', ') || '—'}</dd>
          <dt>since</dt>
          <dd>{new Date(me.data.me.createdAt).toLocaleString('en-GB')}</dd>
        </dl>
      ) : (
        <p>Loading…</p>
      )}

      <h2>Sessions</h2>
      <table data-testid="sessions">
        <thead>
          <tr>
            <th>started</th>
            <th>last refresh</th>
            <th>browser</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(sessions.data?.sessions ?? []).map((row) => (
            <tr key={row.id} data-session={row.id} className={row.current ? 'current' : ''}>
              <td>{time(row.createdAt)}</td>
              <td>{time(row.lastRefreshedAt)}</td>
              <td title={row.userAgent ?? ''}>
                {(row.userAgent ?? 'unknown').slice(0, 40)}
                {row.current ? ' (this one)' : ''}
              </td>
              <td>
                <button
                  disabled={busy}
                  onClick={act(async () => {
                    // The current session: a logout (every tab of this origin signs out).
                    if (row.current) return auth.logout();
                    await revoke({ variables: { id: row.id } });
                    await sessions.refetch();
                  })}
                >
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button onClick={act(() => sessions.refetch())} disabled={busy}>
        Reload sessions
      </button>
    </section>
  );
}
