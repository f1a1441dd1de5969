/** The embedded registry: `imgbuild registry serve` and startRegistryServer(). */
export { startRegistryServer, createRegistryHandler, type RegistryServerOptions, type RunningRegistryServer } from './server.js';
