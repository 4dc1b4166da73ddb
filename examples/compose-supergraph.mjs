#!/usr/bin/env node
// Composes a supergraph file for SUPERGRAPH_FILE from a rover-style config, with the
// @apollo/composition installed in this repository (no rover needed):
//
//   node examples/compose-supergraph.mjs [config.yaml] [--output supergraph.graphql]
//
// config.yaml (default examples/orders/supergraph.yaml):
//   subgraphs:
//     <name>:
//       routing_url: <where the gateway sends this subgraph's requests>
//       schema: { file: <path> } | { files: [<path>, …] } | { subgraph_url: <url to introspect> }
// Paths are relative to the config file. `subgraph_url` asks the running subgraph for its SDL
// (`{ _service { sdl } }`). Without --output the supergraph goes to standard output.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { parse as parseYaml } from 'yaml';

function usage(message) {
  process.stderr.write(`compose-supergraph: ${message}\nusage: node examples/compose-supergraph.mjs [config.yaml] [--output FILE]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let configPath = new URL('./orders/supergraph.yaml', import.meta.url).pathname;
let output = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--output' || args[i] === '-o') output = args[++i] ?? usage('--output needs a file');
  else if (args[i].startsWith('-')) usage(`unknown option ${args[i]}`);
  else configPath = resolve(args[i]);
}

process.on('uncaughtException', (error) => {
  process.stderr.write(`compose-supergraph: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

const config = parseYaml(await readFile(configPath, 'utf8'));
const base = dirname(configPath);
if (!config?.subgraphs || typeof config.subgraphs !== 'object') usage(`${configPath} has no "subgraphs"`);

async function sdlOf(name, schema) {
  if (schema?.file) return readFile(resolve(base, schema.file), 'utf8');
  if (Array.isArray(schema?.files)) {
    return (await Promise.all(schema.files.map((file) => readFile(resolve(base, file), 'utf8')))).join('\n');
  }
  if (schema?.subgraph_url) {
    const response = await fetch(schema.subgraph_url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ _service { sdl } }' }),
    });
    const body = await response.json();
    if (!body?.data?._service?.sdl) throw new Error(`${name}: ${schema.subgraph_url} gave no SDL: ${JSON.stringify(body.errors ?? body)}`);
    return body.data._service.sdl;
  }
  throw new Error(`${name}: schema needs file, files or subgraph_url`);
}

const services = await Promise.all(
  Object.entries(config.subgraphs).map(async ([name, subgraph]) => {
    if (!subgraph?.routing_url) throw new Error(`${name}: routing_url is missing`);
    return { name, url: subgraph.routing_url, typeDefs: parse(await sdlOf(name, subgraph.schema)) };
  }),
);
if (!services.some((s) => s.name === 'auth')) usage('the supergraph needs the subgraph "auth" (Tessera serves it in process)');

const result = composeServices(services);
if (result.errors) {
  for (const error of result.errors) process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
if (output) {
  await writeFile(output, result.supergraphSdl);
  process.stderr.write(`wrote ${output} (${services.map((s) => s.name).join(', ')})\n`);
} else {
  process.stdout.write(result.supergraphSdl);
}
