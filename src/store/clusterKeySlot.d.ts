/** cluster-key-slot (the CRC16 ioredis routes Cluster commands by) ships no types. */
declare module 'cluster-key-slot' {
  /** The Redis Cluster slot of a key (its hash tag's, when it has one). */
  function calculateSlot(key: string): number;
  export default calculateSlot;
}
