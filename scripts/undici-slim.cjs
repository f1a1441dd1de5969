// The parts of undici the CLI uses (Agent, buildConnector and dispatcher.request), without fetch, WebSocket,
// caches and mocks: the bundle loads in a fraction of the time. Used by scripts/bundle.mjs only.
const Agent = require('undici/lib/dispatcher/agent');
const Dispatcher = require('undici/lib/dispatcher/dispatcher');
const api = require('undici/lib/api');
const buildConnector = require('undici/lib/core/connect');

Object.assign(Dispatcher.prototype, api);
module.exports = { Agent, Dispatcher, buildConnector };
