-- wrk script: POST a ~1 KiB vendor webhook signed the way the vendor signs it.
--
--   VENDOR=stripe HMAC_KEY=whsec_bench wrk -t1 -c32 -d10s -s bench/vendor_post.lua http://127.0.0.1:8000/webhooks/stripe
--
-- VENDOR     stripe (default): Stripe-Signature: t=<ts>,v1=<hex HMAC of "<ts>.<body>">
--            standard-webhooks: webhook-id/-timestamp/-signature: v1,<base64 HMAC of "<id>.<ts>.<body>">
-- HMAC_KEY   the HMAC key itself (for standard-webhooks: the bytes the whsec_ secret's base64 decodes to)
--
-- Every request is a new event: a per-run nonce and a per-thread counter make the vendor's
-- event id (Stripe's `id`, the `webhook-id` header) and the body unique, and each body is
-- signed afresh with a pure LuaJIT HMAC-SHA256 (wrk has no crypto), so the cost of signing is
-- on the load generator, the same for hookyard and for the bare peer. Every request also
-- carries the reference kit's X-GXM-APISIGNATURE for "bench-secret", so the bare ASGI peer
-- (which checks only that header) receives byte for byte the same requests as hookyard.
-- done() prints the same WRKSUMMARY line as the reference kit's gxm_post.lua.

local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rshift, lshift, ror, tobit = bit.rshift, bit.lshift, bit.ror, bit.tobit
local byte, char, format, rep = string.byte, string.char, string.format, string.rep

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
local INIT = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
local w = {}

local function compress(H, s, at)
  for i = 0, 15 do
    local a, b, c, d = byte(s, at + i * 4 + 1, at + i * 4 + 4)
    w[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
  end
  for i = 16, 63 do
    local w15, w2 = w[i - 15], w[i - 2]
    local s0 = bxor(ror(w15, 7), ror(w15, 18), rshift(w15, 3))
    local s1 = bxor(ror(w2, 17), ror(w2, 19), rshift(w2, 10))
    w[i] = tobit(w[i - 16] + s0 + w[i - 7] + s1)
  end
  local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
  for i = 0, 63 do
    local t1 = h + bxor(ror(e, 6), ror(e, 11), ror(e, 25)) + bxor(band(e, f), band(bnot(e), g)) + K[i + 1] + w[i]
    local t2 = bxor(ror(a, 2), ror(a, 13), ror(a, 22)) + bxor(band(a, b), band(a, c), band(b, c))
    h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
  end
  H[1], H[2], H[3], H[4] = tobit(H[1] + a), tobit(H[2] + b), tobit(H[3] + c), tobit(H[4] + d)
  H[5], H[6], H[7], H[8] = tobit(H[5] + e), tobit(H[6] + f), tobit(H[7] + g), tobit(H[8] + h)
end

-- SHA-256 of (`before` bytes already compressed into `state`) .. msg; returns the 32-byte digest.
local function finish(state, before, msg)
  local H = { state[1], state[2], state[3], state[4], state[5], state[6], state[7], state[8] }
  local bits = (before + #msg) * 8
  local tail = msg .. "\128" .. rep("\0", (55 - #msg) % 64)
  tail = tail .. char(0, 0, 0, 0, band(rshift(bits, 24), 255), band(rshift(bits, 16), 255),
    band(rshift(bits, 8), 255), band(bits, 255))
  for at = 0, #tail - 64, 64 do
    compress(H, tail, at)
  end
  local out = {}
  for i = 1, 8 do
    local x = H[i]
    out[i] = char(band(rshift(x, 24), 255), band(rshift(x, 16), 255), band(rshift(x, 8), 255), band(x, 255))
  end
  return table.concat(out)
end

local function pad_state(key, pad)
  local block = {}
  for i = 1, 64 do
    block[i] = char(bxor(byte(key, i) or 0, pad))
  end
  local H = { INIT[1], INIT[2], INIT[3], INIT[4], INIT[5], INIT[6], INIT[7], INIT[8] }
  compress(H, table.concat(block), 0)
  return H
end

local inner, outer

local function hmac(msg)
  return finish(outer, 64, finish(inner, 64, msg))
end

local function hex(s)
  return (s:gsub(".", function(ch) return format("%02x", byte(ch)) end))
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = byte(s, i, i + 2)
    local n = lshift(a, 16) + lshift(b or 0, 8) + (c or 0)
    local q1, q2 = rshift(n, 18) + 1, band(rshift(n, 12), 63) + 1
    local q3, q4 = band(rshift(n, 6), 63) + 1, band(n, 63) + 1
    out[#out + 1] = B64:sub(q1, q1) .. B64:sub(q2, q2) .. (b and B64:sub(q3, q3) or "=") .. (c and B64:sub(q4, q4) or "=")
  end
  return table.concat(out)
end

local threads = {}
local thread_counter = 0

function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("tid", thread_counter)
  table.insert(threads, thread)
end

local tid, counter, nonce, vendor

function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 1
  counter = 0
  local f = io.open("/dev/urandom", "rb")
  local raw = f:read(6)
  f:close()
  nonce = hex(raw)
  vendor = os.getenv("VENDOR") or "stripe"
  local key = os.getenv("HMAC_KEY") or "whsec_bench"
  if #key > 64 then key = finish(INIT, 0, key) end
  inner, outer = pad_state(key, 0x36), pad_state(key, 0x5c)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "hookyard-bench-wrk"
  wrk.headers["X-GXM-APISIGNATURE"] = "0159438a9235d6abde38e49fb98944660d067d6b9b03d8a8f4ee4e522feb62cb"
end

-- %s id, %d created, %s type, %s payment intent id, %d amount, %s nonce, %d thread, %d seq  (~1 KiB)
local STRIPE = '{"id":"%s","object":"event","api_version":"2024-06-20","created":%d,"type":"%s",' ..
  '"livemode":false,"pending_webhooks":1,"request":{"id":"req_bench","idempotency_key":"bench-%s"},' ..
  '"data":{"object":{"id":"%s","object":"payment_intent","amount":%d,"amount_received":2000,' ..
  '"currency":"eur","capture_method":"automatic","confirmation_method":"automatic",' ..
  '"customer":"cus_BenchCustomer0001","description":"Hotel Bench Central, 2 nights",' ..
  '"metadata":{"booking_id":"bk_0001","location_id":"loc-4242","channel":"web","loyalty":"gold",' ..
  '"guest_note":"Late arrival, around 23:00; please keep the room."},' ..
  '"payment_method":"pm_1BenchPaymentMethod","payment_method_types":["card"],' ..
  '"receipt_email":"guest@hotel-bench.example","status":"succeeded",' ..
  '"shipping":{"name":"Bench Guest","address":{"line1":"Grote Markt 1","city":"Brussels",' ..
  '"postal_code":"1000","country":"BE"}},' ..
  '"latest_charge":"ch_3BenchLatestCharge","statement_descriptor":"HOTEL BENCH","transfer_group":null}},' ..
  '"bench":{"nonce":"%s","thread":%d,"seq":%d}}'

-- %d timestamp, %s nonce, %d thread, %d seq  (~1 KiB)
local STANDARD = '{"type":"invoice.paid","timestamp":"2026-11-23T08:00:00Z","data":{"object":"invoice",' ..
  '"id":"in_bench","customer":{"id":"cus_BenchCustomer0001","email":"guest@hotel-bench.example",' ..
  '"name":"Bench Guest"},"amount_due":24000,"amount_paid":24000,"currency":"eur",' ..
  '"lines":[{"description":"Room 101, night 1","amount":12000,"quantity":1},' ..
  '{"description":"Room 101, night 2","amount":12000,"quantity":1},' ..
  '{"description":"Breakfast buffet, 2 guests, 2 mornings","amount":0,"quantity":4,"included":true},' ..
  '{"description":"City tax","amount":0,"quantity":2,"included":true}],' ..
  '"footer":"Hotel Bench Central, Grote Markt 1, 1000 Brussels. VAT BE0000.000.000.",' ..
  '"metadata":{"booking_id":"bk_0001","location_id":"loc-4242","channel":"web"},' ..
  '"address":{"line1":"Grote Markt 1","city":"Brussels","postal_code":"1000","country":"BE"},' ..
  '"period":{"start":1763884800,"end":1764057600},"status":"paid","hosted_url":' ..
  '"https://invoices.hotel-bench.example/in_bench","notes":"Thank you for staying with Hotel Bench Central.",' ..
  '"sent_at":%d},"bench":{"nonce":"%s","thread":%d,"seq":%d}}'

function request()
  counter = counter + 1
  local now = os.time()
  local id = format("%s%d_%d", nonce, tid, counter)
  local headers = {}
  for name, value in pairs(wrk.headers) do  -- wrk.format() takes these headers instead of wrk.headers
    headers[name] = value
  end
  local body
  if vendor == "standard-webhooks" then
    body = format(STANDARD, now, nonce, tid, counter)
    local msg_id = "msg_" .. id
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = tostring(now)
    headers["webhook-signature"] = "v1," .. base64(hmac(msg_id .. "." .. now .. "." .. body))
  else
    body = format(STRIPE, "evt_" .. id, now, "payment_intent.succeeded", nonce, "pi_" .. id, 2000 + counter % 100,
      nonce, tid, counter)
    headers["Stripe-Signature"] = format("t=%d,v1=%s", now, hex(hmac(now .. "." .. body)))
  end
  return wrk.format(nil, nil, headers, body)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(format(
    "WRKSUMMARY requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f mean_ms=%.3f non2xx3xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, latency.mean / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
