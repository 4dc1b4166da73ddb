import { GraphQLScalarType, valueFromASTUntyped } from 'graphql';

/** Any JSON value, served as it is (a security event's details; docs/contract.md section 10). */
export const JSONScalar = new GraphQLScalarType<unknown, unknown>({
  name: 'JSON',
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables),
});
