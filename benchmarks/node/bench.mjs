// Warm-path benchmark peer: aws-jwt-verify, used as its README shows.
//
//   node benchmarks/node/bench.mjs --alg RS256 --data benchmarks/data [--rounds N] [--count N]
//
// JwtRsaVerifier.create({ issuer, audience, jwksUri }) then verifier.cacheJwks(jwks) hydrates the
// key set from the local jwks.json, so no network is used. Every verification of `await
// verifier.verify(token)` is timed on its own with process.hrtime.bigint(). Prints one JSON line in
// the same protocol as the Python peers (see benchmarks/peers/_common.py).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { JwtRsaVerifier } from "aws-jwt-verify";
import { JwtInvalidSignatureAlgorithmError } from "aws-jwt-verify/error";

const here = fileURLToPath(new URL(".", import.meta.url));
const { values: args } = parseArgs({
  options: {
    alg: { type: "string" },
    data: { type: "string", default: join(here, "..", "data") },
    tokens: { type: "string" },
    "warmup-tokens": { type: "string" },
    jwks: { type: "string" },
    meta: { type: "string" },
    negatives: { type: "string" },
    count: { type: "string", default: "0" },
    rounds: { type: "string", default: "1" },
    "warmup-passes": { type: "string", default: "3" },
    "warmup-ms": { type: "string", default: "1000" },
    mode: { type: "string", default: "default" },
    summary: { type: "boolean", default: false },
  },
});

const alg = args.alg;
// The package's "exports" hide package.json, so read it from node_modules directly.
const libVersion = JSON.parse(
  readFileSync(join(here, "node_modules", "aws-jwt-verify", "package.json"), "utf8"),
).version;
const base = { impl: "aws-jwt-verify", alg, mode: args.mode, lang: "node", version: libVersion };
const emit = (record) => process.stdout.write(JSON.stringify(record) + "\n");
const lines = (path) =>
  readFileSync(path, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
const tryRead = (path, parse, fallback) => {
  try {
    return parse(path);
  } catch {
    return fallback;
  }
};

const data = args.data;
const meta = JSON.parse(readFileSync(args.meta ?? join(data, "meta.json"), "utf8"));
const jwks = JSON.parse(readFileSync(args.jwks ?? join(data, "jwks.json"), "utf8"));
let tokens = lines(args.tokens ?? join(data, `tokens-${alg}.txt`));
const count = Number(args.count);
if (count > 0) tokens = tokens.slice(0, count);
const warmup = tryRead(args["warmup-tokens"] ?? join(data, `warmup-${alg}.txt`), lines, []);
const negatives = tryRead(
  args.negatives ?? join(data, `negatives-${alg}.json`),
  (p) => JSON.parse(readFileSync(p, "utf8")),
  {},
);
const rounds = Math.max(1, Number(args.rounds));
const warmupPasses = Math.max(0, Number(args["warmup-passes"]));
const warmupMs = Math.max(0, Number(args["warmup-ms"]));
Object.assign(base, { count: tokens.length, rounds });

const verifier = JwtRsaVerifier.create({
  issuer: meta.issuer,
  audience: meta.audience,
  // Never fetched: cacheJwks() below puts the key set in the cache first.
  jwksUri: "https://issuer.example/.well-known/jwks.json",
});
verifier.cacheJwks(jwks);

// Does the library support this algorithm at all? Ask it with the first token and report "n/a"
// with its own error if not (aws-jwt-verify 5 has no PS256), rather than faking a number.
try {
  await verifier.verify(tokens[0]);
} catch (err) {
  if (err instanceof JwtInvalidSignatureAlgorithmError) {
    emit({ ...base, status: "n/a", reason: `aws-jwt-verify ${libVersion}: ${err.message}` });
    process.exit(0);
  }
  emit({ ...base, status: "error", reason: `${err?.name}: ${err?.message}` });
  process.exit(1);
}

const accepts = async (token) => {
  try {
    await verifier.verify(token);
    return true;
  } catch {
    return false;
  }
};

const negativeVerdicts = {};
for (const [name, token] of Object.entries(negatives)) {
  negativeVerdicts[name] = (await accepts(token)) ? "accepted" : "refused";
}

const timePass = async (list, samples) => {
  let refused = 0;
  for (const token of list) {
    const t0 = process.hrtime.bigint();
    try {
      await verifier.verify(token);
    } catch {
      refused += 1;
    }
    const t1 = process.hrtime.bigint();
    if (samples) samples.push(Number(t1 - t0));
  }
  return refused;
};

// Warm-up on tokens that are never timed: at least warmupPasses passes and at least warmupMs.
let warmupVerifications = 0;
if (warmup.length > 0) {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(warmupMs * 1e6));
  for (let pass = 0; pass < warmupPasses || process.hrtime.bigint() < deadline; pass++) {
    await timePass(warmup, null);
    warmupVerifications += warmup.length;
  }
}

const samples = [];
let refused = 0;
for (let r = 0; r < rounds; r++) refused += await timePass(tokens, samples);

const record = {
  ...base,
  status: "ok",
  ok: tokens.length * rounds - refused,
  failed: refused,
  negatives: negativeVerdicts,
  claims_checked: true,
  warmup_verifications: warmupVerifications,
  node: process.versions.node,
};
if (args.summary) {
  const s = [...samples].sort((a, b) => a - b);
  record.median_ns = s[Math.floor(s.length / 2)];
  record.p99_ns = s[Math.min(s.length - 1, Math.floor(0.99 * s.length))];
} else {
  record.samples_ns = samples;
}
emit(record);
