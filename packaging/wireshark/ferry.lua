-- Wireshark dissector for the Apache TVM RPC protocols, as ferry speaks them
-- (docs/internals/dump.md; the facts are in spec/tracker-proxy-server.md and
-- spec/rpc-session.md):
--
--   ferry_tracker  the tracker link: i32 magic 0x2F271 each way, then frames
--                  of i32 length + JSON text
--   ferry_rpc      session and proxy links: the handshake (i32 magic 0xFF271
--                  + key, answered by a code + key), then RPC packets
--                  (u64 length, i32 code, body) of both session dialects,
--                  classic (TVM <= 0.20) and tvm-ffi (TVM >= 0.21), told apart
--                  per TCP stream the way ferry's server does: the first
--                  packed sequence that parses in exactly one of them
--
-- Install: copy to ~/.local/lib/wireshark/plugins/ (the ferry package puts
-- it in /usr/lib/ferry/wireshark/), or run `tshark -X lua_script:ferry.lua`.
-- Ports: Edit > Preferences > Protocols > FERRY_TRACKER / FERRY_RPC, or
-- `-o ferry_tracker.ports:9190 -o ferry_rpc.ports:9090-9099`.

local RPC_MAGIC = 0xFF271
local TRACKER_MAGIC = 0x2F271
local MAX_PACKET = 2 ^ 40 -- larger lengths are shown as malformed, not reassembled

local tracker = Proto("ferry_tracker", "TVM RPC tracker (ferry)")
local rpc = Proto("ferry_rpc", "TVM RPC session (ferry)")

local rpc_codes = {
  [0] = "kNone", [1] = "kShutdown", [2] = "kInitServer", [3] = "kCallFunc",
  [4] = "kReturn", [5] = "kException", [6] = "kCopyFromRemote",
  [7] = "kCopyToRemote", [8] = "kCopyAck", [9] = "kGetGlobalFunc",
  [10] = "kFreeHandle", [11] = "kDevSetDevice", [12] = "kDevGetAttr",
  [13] = "kDevAllocData", [14] = "kDevFreeData", [15] = "kDevStreamSync",
  [16] = "kCopyAmongRemote", [17] = "kDevAllocDataWithScope",
  [18] = "kDevCreateStream", [19] = "kDevFreeStream", [20] = "kDevSetStream",
  [21] = "kDevGetCurrentStream",
}
local hs_codes = {
  [RPC_MAGIC] = "RPC magic / SUCCESS", [0xFF272] = "DUPLICATE", [0xFF273] = "MISMATCH",
}
local tracker_codes = {
  [-1] = "FAIL", [0] = "SUCCESS", [1] = "PING", [2] = "STOP", [3] = "PUT",
  [4] = "REQUEST", [5] = "UPDATE_INFO", [6] = "SUMMARY", [7] = "GET_PENDING_MATCHKEYS",
}

local f = {
  t_magic = ProtoField.uint32("ferry_tracker.magic", "Magic", base.HEX),
  t_len = ProtoField.int32("ferry_tracker.len", "Length"),
  t_json = ProtoField.string("ferry_tracker.json", "JSON"),
  t_code = ProtoField.int32("ferry_tracker.code", "Request code", base.DEC, tracker_codes),
  msg = ProtoField.string("ferry_rpc.msg", "Message"),
  hs_word = ProtoField.uint32("ferry_rpc.hs_word", "Handshake word", base.HEX, hs_codes),
  hs_keylen = ProtoField.int32("ferry_rpc.key_len", "Key length"),
  hs_key = ProtoField.string("ferry_rpc.key", "Key"),
  len = ProtoField.uint64("ferry_rpc.len", "Packet length"),
  code = ProtoField.int32("ferry_rpc.code", "Code", base.DEC, rpc_codes),
  dialect = ProtoField.string("ferry_rpc.dialect", "Dialect"),
  version = ProtoField.string("ferry_rpc.version", "Protocol version"),
  handle = ProtoField.uint64("ferry_rpc.handle", "Function handle", base.HEX),
  nargs = ProtoField.int32("ferry_rpc.nargs", "Arguments"),
  arg = ProtoField.string("ferry_rpc.arg", "Argument"),
  nbytes = ProtoField.uint64("ferry_rpc.nbytes", "Bytes"),
  data = ProtoField.bytes("ferry_rpc.data", "Data"),
}
tracker.fields = { f.t_magic, f.t_len, f.t_json, f.t_code }
rpc.fields = { f.msg, f.hs_word, f.hs_keylen, f.hs_key, f.len, f.code, f.dialect, f.version,
  f.handle, f.nargs, f.arg, f.nbytes, f.data }

local ef_bad = ProtoExpert.new("ferry_rpc.bad", "Malformed TVM RPC message",
  expert.group.MALFORMED, expert.severity.ERROR)
local ef_bad_t = ProtoExpert.new("ferry_tracker.bad", "Malformed TVM tracker message",
  expert.group.MALFORMED, expert.severity.ERROR)
rpc.experts = { ef_bad }
tracker.experts = { ef_bad_t }

tracker.prefs.ports = Pref.range("Ports", "9190", "TCP ports of trackers", 65535)
rpc.prefs.ports = Pref.range("Ports", "9090-9099", "TCP ports of servers and proxies", 65535)

local tcp_stream = Field.new("tcp.stream")
local dialect_of = {} -- tcp.stream -> "classic" | "ffi"

-- ---- stream framing ----------------------------------------------------------

-- Splits a TCP payload into messages; get_len gives a message's length from
-- its start, or -1 when it needs more bytes to tell.  A message that goes on
-- past this segment is left to TCP reassembly (pinfo.desegment_*).
local function pdus(tvb, pinfo, root, get_len, dissect)
  local off, n = 0, tvb:len()
  while off < n do
    local len = get_len(tvb, pinfo, off)
    if len < 0 or off + len > n then
      pinfo.desegment_offset = off
      pinfo.desegment_len = len < 0 and DESEGMENT_ONE_MORE_SEGMENT or (off + len - n)
      return n
    end
    dissect(tvb(off, len):tvb(), pinfo, root)
    off = off + len
  end
  return n
end

-- ---- tracker ---------------------------------------------------------------

local function tracker_len(tvb, pinfo, offset)
  local left = tvb:len() - offset
  if left < 4 then return -1 end
  local w = tvb(offset, 4):le_int()
  if w == TRACKER_MAGIC then return 4 end
  if w <= 0 then return left end -- shown as malformed below
  return 4 + w
end

local function tracker_pdu(tvb, pinfo, root)
  pinfo.cols.protocol = "TVM tracker"
  local t = root:add(tracker, tvb())
  local w = tvb(0, 4):le_int()
  if tvb:len() == 4 and w == TRACKER_MAGIC then
    t:add_le(f.t_magic, tvb(0, 4))
    pinfo.cols.info:append(" magic")
    return tvb:len()
  end
  t:add_le(f.t_len, tvb(0, 4))
  if w <= 0 or tvb:len() ~= 4 + w then
    t:add_proto_expert_info(ef_bad_t, "bad frame length " .. w)
    return tvb:len()
  end
  local text = tvb(4, w):string()
  t:add(f.t_json, tvb(4, w))
  local code = text:match("^%[%s*(%-?%d+)")
  if code then t:add(f.t_code, tvb(4, w), tonumber(code)):set_generated() end
  pinfo.cols.info:append(" " .. (#text > 60 and text:sub(1, 60) .. "..." or text))
  return tvb:len()
end

function tracker.dissector(tvb, pinfo, root)
  pinfo.cols.info = "TVM tracker"
  return pdus(tvb, pinfo, root, tracker_len, tracker_pdu)
end

-- ---- packed sequences --------------------------------------------------------

-- Each decoder returns (text, bytes used) or nil when the value does not fit.
local function u64hex(tvb, off)
  return "0x" .. tvb(off, 8):le_uint64():tohex():gsub("^0+(.)", "%1")
end

local function str_at(tvb, off, limit)
  if limit - off < 8 then return nil end
  local n = tvb(off, 8):le_uint64():tonumber()
  if n > limit - off - 8 then return nil end
  local s = n > 0 and tvb(off + 8, math.min(n, 80)):string() or ""
  return s, 8 + n, n
end

local function tensor_at(tvb, off, limit)
  if limit - off < 32 then return nil end
  local ndim = tvb(off + 16, 4):le_int()
  if ndim < 0 or ndim > 32 or limit - off < 32 + 8 * ndim then return nil end
  local dt = { [0] = "int", [1] = "uint", [2] = "float", [3] = "handle", [4] = "bfloat" }
  local code, bits = tvb(off + 20, 1):uint(), tvb(off + 21, 1):uint()
  local shape = {}
  for i = 0, ndim - 1 do shape[#shape + 1] = tostring(tvb(off + 24 + 8 * i, 8):le_int64()) end
  local text = string.format("tensor %s%d[%s] dev %d:%d data=%s", dt[code] or "dtype", bits,
    table.concat(shape, ","), tvb(off + 8, 4):le_int(), tvb(off + 12, 4):le_int(),
    u64hex(tvb, off))
  return text, 32 + 8 * ndim
end

local classic_word = { [0] = "int", [1] = "uint", [2] = "float", [3] = "handle", [5] = "dtype",
  [6] = "device", [9] = "module", [10] = "func", [15] = "bool" }

local function classic_value(code, tvb, off, limit)
  if classic_word[code] then
    if limit - off < 8 then return nil end
    local v
    if code == 2 then v = tostring(tvb(off, 8):le_float())
    elseif code == 0 or code == 15 then v = tostring(tvb(off, 8):le_int64())
    else v = u64hex(tvb, off) end
    return classic_word[code] .. " " .. v, 8
  elseif code == 4 then return "null", 0
  elseif code == 7 then return tensor_at(tvb, off, limit)
  elseif code == 8 then
    if limit - off < 12 then return nil end
    return "object " .. u64hex(tvb, off + 4), 12
  elseif code == 11 or code == 12 then
    local s, used, n = str_at(tvb, off, limit)
    if not s then return nil end
    if code == 11 then return string.format("str %q", s), used end
    return "bytes (" .. n .. ")", used
  end
  return nil
end

-- Classic: i32 n, i32 codes[n], then the values.  Returns a list or nil.
local function classic_seq(tvb, off, limit)
  if limit - off < 4 then return nil end
  local n = tvb(off, 4):le_int()
  if n < 0 or n > (limit - off - 4) / 4 then return nil end
  local codes, vals = {}, {}
  local p = off + 4
  for i = 1, n do codes[i] = tvb(p, 4):le_int(); p = p + 4 end
  for i = 1, n do
    local text, used = classic_value(codes[i], tvb, p, limit)
    if not text then return nil end
    vals[i] = text
    p = p + used
  end
  return vals, p - off
end

local ffi_word = { [1] = "int", [2] = "bool", [3] = "float", [4] = "handle", [5] = "dtype",
  [6] = "device", [68] = "func", [73] = "module" }

local function ffi_value(index, tvb, off, limit)
  if ffi_word[index] then
    if limit - off < 8 then return nil end
    local v
    if index == 3 then v = tostring(tvb(off, 8):le_float())
    elseif index == 1 or index == 2 then v = tostring(tvb(off, 8):le_int64())
    else v = u64hex(tvb, off) end
    return ffi_word[index] .. " " .. v, 8
  elseif index == 0 then return "null", 0
  elseif index == 7 then return tensor_at(tvb, off, limit)
  elseif index == 8 or index == 9 then
    local s, used, n = str_at(tvb, off, limit)
    if not s then return nil end
    if index == 8 then return string.format("str %q", s), used end
    return "bytes (" .. n .. ")", used
  elseif index == 11 or index == 12 or (index >= 64 and index ~= 70 and index ~= 72) then
    if limit - off < 4 then return nil end
    local inner = tvb(off, 4):le_uint()
    if inner == 65 or inner == 66 then
      local s, used, n = str_at(tvb, off + 4, limit)
      if not s then return nil end
      if inner == 65 then return string.format("str %q", s), 4 + used end
      return "bytes (" .. n .. ")", 4 + used
    elseif inner == 115 then
      if limit - off < 12 then return nil end
      return "object " .. u64hex(tvb, off + 4), 12
    end
  end
  return nil
end

-- tvm-ffi: i32 n, then (i32 type index, payload) n times.
local function ffi_seq(tvb, off, limit)
  if limit - off < 4 then return nil end
  local n = tvb(off, 4):le_int()
  if n < 0 or n > (limit - off - 4) / 4 then return nil end
  local vals, p = {}, off + 4
  for i = 1, n do
    if limit - p < 4 then return nil end
    local index = tvb(p, 4):le_int()
    local text, used = ffi_value(index, tvb, p + 4, limit)
    if not text then return nil end
    vals[i] = text
    p = p + 4 + used
  end
  return vals, p - off
end

-- The sequence that ends a packet, in the stream's dialect (detected at the
-- first sequence that only one dialect reads exactly).
local function seq(tvb, pinfo, tree, off, limit)
  local stream = tcp_stream() and tcp_stream().value or -1
  local d = dialect_of[stream]
  local cv, cu = classic_seq(tvb, off, limit)
  local fv, fu = ffi_seq(tvb, off, limit)
  local c_ok = cv and off + cu == limit
  local f_ok = fv and off + fu == limit
  if not d and c_ok ~= f_ok and limit - off > 4 then
    d = c_ok and "classic" or "ffi"
    dialect_of[stream] = d
  end
  local vals
  if d == "ffi" then vals = f_ok and fv or nil
  elseif d == "classic" then vals = c_ok and cv or nil
  else vals = (c_ok and cv) or (f_ok and fv) end
  if d then tree:add(f.dialect, d):set_generated() end
  if not vals then
    tree:add_proto_expert_info(ef_bad, "arguments in no known dialect")
    return "(?)"
  end
  tree:add_le(f.nargs, tvb(off, 4))
  for _, v in ipairs(vals) do tree:add(f.arg, v) end
  return "(" .. table.concat(vals, ", ") .. ")"
end

-- ---- session -----------------------------------------------------------------

local function rpc_len(tvb, pinfo, offset)
  local left = tvb:len() - offset
  if left < 4 then return -1 end
  local w = tvb(offset, 4):le_uint()
  if w == RPC_MAGIC then
    -- A handshake word; a key follows the initiator's magic and a SUCCESS.
    if left < 8 then return -1 end
    local k = tvb(offset + 4, 4):le_int()
    if k < 0 or k > 4096 then return 4 end
    return 8 + k
  elseif w == 0xFF272 or w == 0xFF273 then
    return 4
  end
  if left < 8 then return -1 end
  local n = tvb(offset, 8):le_uint64():tonumber()
  if n < 4 or n > MAX_PACKET then return left end -- shown as malformed below
  return 8 + n
end

local function body(code, tvb, pinfo, tree)
  local n = tvb:len()
  if code == 2 then
    local s, used = str_at(tvb, 12, n)
    if not s then return nil end
    tree:add(f.version, tvb(20, used - 8))
    return string.format("version %q ", s) .. seq(tvb, pinfo, tree, 12 + used, n)
  elseif code == 3 then
    if n < 20 then return nil end
    tree:add_le(f.handle, tvb(12, 8))
    return "func " .. u64hex(tvb, 12) .. " " .. seq(tvb, pinfo, tree, 20, n)
  elseif code == 6 or code == 7 then
    local text, used = tensor_at(tvb, 12, n)
    if not text or n < 12 + used + 8 then return nil end
    tree:add(f.arg, text)
    tree:add_le(f.nbytes, tvb(12 + used, 8))
    if code == 7 and n > 20 + used then tree:add(f.data, tvb(20 + used)) end
    return text .. ", " .. tvb(12 + used, 8):le_uint64():tonumber() .. " bytes"
  elseif code == 8 then
    if n > 12 then tree:add(f.data, tvb(12)) end
    return (n - 12) .. " bytes"
  elseif code == 1 then
    return ""
  elseif code == 4 or code == 5 or code >= 9 then
    return seq(tvb, pinfo, tree, 12, n)
  end
  return nil
end

local function rpc_pdu(tvb, pinfo, root)
  pinfo.cols.protocol = "TVM RPC"
  local t = root:add(rpc, tvb())
  local n = tvb:len()
  local w = tvb(0, 4):le_uint()
  local text
  if hs_codes[w] and (n == 4 or (n >= 8 and n == 8 + tvb(4, 4):le_int())) then
    t:add_le(f.hs_word, tvb(0, 4))
    text = "handshake " .. hs_codes[w]
    if n >= 8 then
      t:add_le(f.hs_keylen, tvb(4, 4))
      local key = n > 8 and tvb(8, n - 8):string() or ""
      if n > 8 then t:add(f.hs_key, tvb(8, n - 8)) end
      text = text .. string.format(" key %q", key)
    end
  else
    local len = n >= 8 and tvb(0, 8):le_uint64():tonumber() or 0
    if n < 12 or len ~= n - 8 then
      t:add_proto_expert_info(ef_bad, "packet length " .. len .. " with " .. n .. " bytes")
      pinfo.cols.info:append(" [malformed]")
      return n
    end
    t:add_le(f.len, tvb(0, 8))
    t:add_le(f.code, tvb(8, 4))
    local code = tvb(8, 4):le_int()
    local name = rpc_codes[code] or ("code " .. code)
    local b = body(code, tvb, pinfo, t)
    if not b then
      t:add_proto_expert_info(ef_bad, name .. " body does not decode")
      b = "[malformed]"
    end
    text = name .. " " .. b
  end
  t:add(f.msg, text):set_generated()
  pinfo.cols.info:append(" " .. (#text > 100 and text:sub(1, 100) .. "..." or text))
  return n
end

function rpc.dissector(tvb, pinfo, root)
  pinfo.cols.info = "TVM RPC"
  return pdus(tvb, pinfo, root, rpc_len, rpc_pdu)
end

-- ---- ports ---------------------------------------------------------------------

local tcp_table = DissectorTable.get("tcp.port")
local registered = { tracker = nil, rpc = nil }

local function register()
  if registered.tracker then tcp_table:remove(registered.tracker, tracker) end
  if registered.rpc then tcp_table:remove(registered.rpc, rpc) end
  registered.tracker, registered.rpc = tracker.prefs.ports, rpc.prefs.ports
  tcp_table:add(registered.tracker, tracker)
  tcp_table:add(registered.rpc, rpc)
end

tracker.prefs_changed = register
rpc.prefs_changed = register
register()
