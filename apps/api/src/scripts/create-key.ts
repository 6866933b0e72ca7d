// `keys create`, under the name the README and docker-compose.yml have long given: see keys.ts.
// (A dynamic import, so that the command is in argv before keys.ts reads it.)
process.argv.splice(2, 0, 'create');
await import('./keys.js');
export {};
