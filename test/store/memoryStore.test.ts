import { describe } from 'vitest';
import { MemoryStore } from '../../src/store/memoryStore.js';
import { accountContract } from './accountContract.js';
import { eventContract } from './eventContract.js';
import { factorContract } from './factorContract.js';
import { storeContract } from './storeContract.js';

describe('MemoryStore', () => {
  const store = new MemoryStore();
  storeContract({ store: () => store, peer: () => store });
  factorContract({ store: () => store });
  accountContract({ store: () => store, peer: () => store });
  eventContract({ store: () => store, fresh: async (options) => new MemoryStore(options) });
});
