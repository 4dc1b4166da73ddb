import { describe } from 'vitest';
import { MemoryStore } from '../../src/store/memoryStore.js';
import { storeContract } from './storeContract.js';

describe('MemoryStore', () => {
  const store = new MemoryStore();
  storeContract({ store: () => store, peer: () => store });
});
