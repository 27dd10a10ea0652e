// A Pharos exporter plugin in JavaScript: it simulates the HTTP traffic of the endpoints
// listed in its configuration and reports it as a request counter, a latency histogram and
// an in-flight gauge. Swap `simulate` for real measurements (the exporter world also
// imports wasi:http/outgoing-handler, for hosts the plugin's `allow_hosts` permits) and the
// rest stays the same.
//
// componentize-js maps the WIT contract (wit/*.wit) onto plain JavaScript:
//   - the exported interface `pharos:plugin/exporter-api@0.1.0` is the `exporterApi` object
//     exported below, its functions in camelCase;
//   - records are objects with camelCase fields (`upperBound`, `cumulativeCount`);
//   - variants are `{ tag: 'case-name', val: payload }`;
//   - `option<T>` is `undefined` (none) or the value;
//   - `result<T, E>`: return the ok value; throw the error payload (a plugin-error variant);
//   - u64 and s64 are BigInt, f64 is a Number;
//   - the imported interface `log` is an ES module named after its WIT package.

import { log } from 'pharos:plugin/log@0.1.0';

// Latency buckets in seconds, the Prometheus client libraries' defaults trimmed to what an
// HTTP service cares about. The +Inf bucket is implied by the histogram's count.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

// Everything the plugin keeps between calls. An instance lives until the host drops it
// (reload, new plugin version, trap), so the counters below restart at zero then, which
// Prometheus' rate() already handles as a counter reset.
let config = null;
let state = null;

class InvalidConfig {
  constructor(reason) {
    this.tag = 'invalid-config';
    this.val = reason;
  }
}

function fail(reason) {
  // A thrown object with `tag` and `val` becomes the `err` case of the function's result.
  throw new InvalidConfig(reason);
}

function isPlainObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rejectUnknownKeys(obj, allowed, where) {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      fail(`${where}: unknown field "${key}" (expected one of: ${allowed.join(', ')})`);
    }
  }
}

// Turns the operator's JSON into a validated configuration, or throws InvalidConfig.
function parseConfig(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fail(`configuration is not valid JSON: ${e.message}`);
  }
  if (!isPlainObject(doc)) fail('configuration must be a JSON object');
  rejectUnknownKeys(doc, ['environment', 'endpoints', 'seed'], 'configuration');

  const environment = doc.environment;
  if (typeof environment !== 'string' || environment === '') {
    fail('"environment" must be a non-empty string');
  }

  if (!Array.isArray(doc.endpoints) || doc.endpoints.length === 0) {
    fail('"endpoints" must be a non-empty list');
  }
  const seen = new Set();
  const endpoints = doc.endpoints.map((ep, i) => {
    const where = `endpoints[${i}]`;
    if (!isPlainObject(ep)) fail(`${where} must be an object`);
    rejectUnknownKeys(ep, ['path', 'rate', 'error_ratio'], where);
    if (typeof ep.path !== 'string' || !ep.path.startsWith('/')) {
      fail(`${where}.path must be a string starting with "/"`);
    }
    if (seen.has(ep.path)) fail(`${where}.path "${ep.path}" is listed twice`);
    seen.add(ep.path);
    const rate = ep.rate ?? 10;
    if (!Number.isInteger(rate) || rate < 1 || rate > 10000) {
      fail(`${where}.rate must be an integer between 1 and 10000 (requests per scrape)`);
    }
    const errorRatio = ep.error_ratio ?? 0.01;
    if (typeof errorRatio !== 'number' || errorRatio < 0 || errorRatio > 1) {
      fail(`${where}.error_ratio must be a number between 0 and 1`);
    }
    return { path: ep.path, rate, errorRatio };
  });

  const seed = doc.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    fail('"seed" must be an integer between 0 and 4294967295');
  }
  return { environment, endpoints, seed };
}

// mulberry32: a small, seedable PRNG, so a given configuration produces the same series
// on every run (handy when checking the plugin's output by hand).
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function freshState(cfg) {
  return {
    random: prng(cfg.seed),
    collects: 0n,
    inFlight: 0,
    perEndpoint: cfg.endpoints.map(() => ({
      ok: 0n,
      errors: 0n,
      bucketCounts: BUCKETS.map(() => 0n),
      count: 0n,
      sum: 0,
    })),
  };
}

// One scrape interval's worth of fake traffic for every endpoint.
function simulate() {
  const r = state.random;
  config.endpoints.forEach((ep, i) => {
    const s = state.perEndpoint[i];
    // Between half and one and a half times the configured rate.
    const requests = Math.max(1, Math.round(ep.rate * (0.5 + r())));
    for (let k = 0; k < requests; k++) {
      // Roughly log-normal latency around 40 ms with a long tail.
      const seconds = 0.04 * Math.exp((r() + r() + r() - 1.5) * 2);
      s.count += 1n;
      s.sum += seconds;
      BUCKETS.forEach((le, b) => {
        if (seconds <= le) s.bucketCounts[b] += 1n;
      });
      if (r() < ep.errorRatio) s.errors += 1n;
      else s.ok += 1n;
    }
  });
  state.inFlight = Math.floor(r() * 5);
}

function label(name, value) {
  return { name, value };
}

export const exporterApi = {
  configure(text) {
    config = parseConfig(text);
    state = freshState(config);
    log('info', `js-example: ${config.endpoints.length} endpoint(s) in environment ${config.environment}`);
  },

  collect() {
    if (config === null) {
      // The host always calls configure first; this only guards against a broken host.
      throw { tag: 'permanent', val: 'collect called before configure' }; // any {tag, val} object works
    }
    simulate();
    state.collects += 1n;
    const env = label('environment', config.environment);

    const requests = [];
    const durations = [];
    config.endpoints.forEach((ep, i) => {
      const s = state.perEndpoint[i];
      const path = label('path', ep.path);
      requests.push({ labels: [env, path, label('code', '200')], value: Number(s.ok), timestamp: undefined });
      requests.push({ labels: [env, path, label('code', '500')], value: Number(s.errors), timestamp: undefined });
      durations.push({
        labels: [env, path],
        // Already cumulative: each count includes every faster request.
        buckets: BUCKETS.map((le, b) => ({ upperBound: le, cumulativeCount: s.bucketCounts[b] })),
        sum: s.sum,
        count: s.count,
        timestamp: undefined,
      });
    });

    return [
      {
        name: 'js_example_http_requests_total',
        help: 'Simulated HTTP requests by endpoint and status code.',
        unit: undefined,
        points: { tag: 'counter', val: requests },
      },
      {
        name: 'js_example_http_request_duration_seconds',
        help: 'Simulated HTTP request latency.',
        unit: 'seconds',
        points: { tag: 'histogram', val: durations },
      },
      {
        name: 'js_example_http_in_flight_requests',
        help: 'Simulated requests being served at scrape time.',
        unit: undefined,
        points: { tag: 'gauge', val: [{ labels: [env], value: state.inFlight, timestamp: undefined }] },
      },
      {
        name: 'js_example_collects_total',
        help: 'Calls to collect since this plugin instance was configured.',
        unit: undefined,
        points: { tag: 'counter', val: [{ labels: [env], value: Number(state.collects), timestamp: undefined }] },
      },
    ];
  },
};
