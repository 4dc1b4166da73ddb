import { ApolloClient, InMemoryCache } from '@apollo/client';
import { ApolloProvider } from '@apollo/client/react';
import { createAuthClient } from '@tessera-gateway/client';
import { createApolloLink } from '@tessera-gateway/client/apollo';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.js';
import { config } from './config.js';
import './styles.css';

// One auth client per page: it keeps the tokens, refreshes them before they expire (one refresh
// for all tabs of this origin) and ends the session in every tab when one logs out.
const auth = createAuthClient({ url: config.url, transport: config.transport });
const apollo = new ApolloClient({ link: createApolloLink(auth), cache: new InMemoryCache() });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ApolloProvider client={apollo}>
      <App auth={auth} />
    </ApolloProvider>
  </StrictMode>,
);
