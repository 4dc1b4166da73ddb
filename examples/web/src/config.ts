import type { Transport } from '@tessera-gateway/client';

declare global {
  interface Window {
    TESSERA_CONFIG?: { url?: string; transport?: Transport };
  }
}

/** The gateway's /graphql and how the refresh token travels: public/config.js, else the build's env, else the defaults. */
export const config = {
  url: window.TESSERA_CONFIG?.url ?? import.meta.env.VITE_TESSERA_URL ?? 'http://localhost:4000/graphql',
  transport: (window.TESSERA_CONFIG?.transport ?? import.meta.env.VITE_TESSERA_TRANSPORT ?? 'cookie') as Transport,
};
