#!/bin/sh
# make demo: the TVM how-to's RPC scenario on 127.0.0.1 with ferry's parts.
#
#   tracker  <- proxy  <- three servers --through-proxy (keys K0, K1, K2)
#   tracker  <- one direct server (key cpu)
#
# then the query table, then a kernel run on a device that the tracker hands
# out.  Everything keeps running until Ctrl-C, which stops it all cleanly.
# FERRY_DEMO_ONCE=1 stops right after showing (used by the tests).
set -u
build=${1:-build}
FERRY="$build/ferry"
root=$(cd "$(dirname "$0")/.." && pwd)
logs=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
pids=""

stop_all() {
  trap - INT TERM EXIT
  echo
  echo "== stopping"
  # Servers first, then the proxy, then the tracker, so nothing logs about
  # a peer that vanished under it.
  for p in $pids; do kill -TERM "$p" 2>/dev/null; done
  for p in $pids; do wait "$p" 2>/dev/null; done
  rm -rf "$logs"
  echo "all stopped"
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

# start NAME ARGS...: runs ferry in the background, logging to $logs/NAME.log
start() {
  name=$1
  shift
  "$FERRY" "$@" >"$logs/$name.log" 2>&1 &
  pids="$! $pids"
}

# port_of NAME [PATTERN]: waits until NAME logged its listening port.
port_of() {
  pat=${2:-listening on}
  i=0
  while [ $i -lt 100 ]; do
    port=$(grep -m1 "$pat" "$logs/$1.log" 2>/dev/null | sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p')
    if [ -n "$port" ]; then echo "$port"; return 0; fi
    i=$((i + 1))
    sleep 0.1
  done
  echo "ferry demo: $1 did not start; its log:" >&2
  cat "$logs/$1.log" >&2
  exit 1
}

echo "== ferry tracker"
start tracker tracker --host 127.0.0.1 --port 9190 --port-end 9199
tport=$(port_of tracker)
echo "tracker on 127.0.0.1:$tport"

echo "== ferry proxy (registers the keys it serves with the tracker)"
start proxy proxy --host 127.0.0.1 --port 9090 --port-end 9189 --tracker 127.0.0.1:$tport
pport=$(port_of proxy)
echo "proxy on 127.0.0.1:$pport"

echo "== three servers behind the proxy (K0, K1, K2) and one direct server (cpu)"
for k in K0 K1 K2; do
  start "server-$k" server --host 127.0.0.1 --port "$pport" --through-proxy --key "$k"
done
start server-cpu server --host 127.0.0.1 --port 9091 --port-end 9189 --tracker 127.0.0.1:$tport --key cpu
port_of server-cpu >/dev/null

# Registration is asynchronous: wait until the tracker knows all four keys.
i=0
while [ $i -lt 50 ]; do
  n=$("$FERRY" query --port "$tport" --json 2>/dev/null | grep -o '"K[012]\|"cpu' | sort -u | wc -l)
  [ "$n" -ge 4 ] && break
  i=$((i + 1))
  sleep 0.2
done

echo "== ferry query --port $tport"
"$FERRY" query --port "$tport"

if [ -f "$build/tests/models/testlib.so" ]; then
  echo "== ferry run: addone on a device handed out by the tracker (key K1, behind the proxy)"
  input="$logs/x.npy"
  /usr/bin/python3 -c "import numpy as np; np.save('$input', np.arange(8, dtype='float32'))"
  "$FERRY" run --tracker 127.0.0.1:$tport --key K1 --timeout 20 \
    "$build/tests/models/testlib.so" addone --input "$input" --output "$logs/y.npy" &&
    /usr/bin/python3 -c "import numpy as np; print('input ', np.load('$input')); print('output', np.load('$logs/y.npy'))"
  echo "== ferry time: the same kernel timed on the device by TVM's time evaluator (key cpu)"
  "$FERRY" time --tracker 127.0.0.1:$tport --key cpu --timeout 20 --number 100 --repeat 3 \
    "$build/tests/models/testlib.so" addone --input "$input" --output "$logs/z.npy"
  echo "== ferry query: the devices are back in the free list"
  "$FERRY" query --port "$tport" | sed -n '/Queue Status/,$p'
fi

if [ -f "$build/tests/models/zoo_kernels.o" ]; then
  echo "== ferry pack: a small CNN (conv, relu, pooling, dense, softmax) as one library, like export_library"
  /usr/bin/python3 "$root/tests/models/zoo/make_models.py" "$logs" cnn
  "$FERRY" pack --graph "$logs/cnn.json" --params "$logs/cnn.params" \
    --output "$logs/cnn.so" "$build/tests/models/zoo_kernels.o"
  echo "== ferry run: the whole CNN on a device handed out by the tracker (key K2, behind the proxy)"
  "$FERRY" run --tracker 127.0.0.1:$tport --key K2 --timeout 20 --repeat 10 \
    "$logs/cnn.so" --input data="$logs/cnn_input.npy" --output "$logs/cnn_out.npy" &&
    /usr/bin/python3 -c "import numpy as np; print('cnn_out.npy', np.array2string(np.load('$logs/cnn_out.npy'), precision=4))"
fi

if [ "${FERRY_DEMO_ONCE:-0}" = 1 ]; then
  exit 0
fi
echo
echo "Running. In another terminal: $FERRY query --port $tport"
echo "Logs: $logs   Press Ctrl-C to stop everything."
while :; do sleep 3600 & wait $!; done
