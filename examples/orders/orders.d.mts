// Types of orders.mjs, for the TypeScript tests that start the example subgraph in process.
import type { IncomingHttpHeaders } from 'node:http';
import type { ContextVerifier } from '@tessera-gateway/subgraph';

export declare const typeDefs: string;

export interface Order {
  id: string;
  placedAt: string;
  status: 'PLACED' | 'SHIPPED' | 'DELIVERED';
  total: number | null;
}

export declare function ordersOf(userId: string): Order[];

export interface OrdersSubgraph {
  url: string;
  stop(): Promise<void>;
}

export declare function startOrdersSubgraph(options: {
  verifier: ContextVerifier;
  port?: number;
  host?: string;
  onRequest?: (headers: IncomingHttpHeaders) => void;
}): Promise<OrdersSubgraph>;
