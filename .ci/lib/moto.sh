# Sourced by the interop scripts that need moto's server (S3 and KMS APIs): one venv, one pin
# (.ci/moto-requirements.txt). Expects `root` (the repository) and the current directory there.
#
# start_moto: installs moto if needed, starts `moto_server` on a free port of 127.0.0.1, waits
# until it accepts connections, and stops it when the script exits. Sets MOTO_BIN (the server
# binary, for tests that start their own) and MOTO_ENDPOINT (http://127.0.0.1:PORT).

start_moto() {
  local venv="$root/target/moto-venv"
  if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/moto-requirements.txt
  MOTO_BIN="$venv/bin/moto_server"
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  MOTO_ENDPOINT="http://127.0.0.1:$port"
  moto_log=$(mktemp)
  "$MOTO_BIN" -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
  moto_pid=$!
  trap stop_moto EXIT
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
}

stop_moto() {
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
  rm -f "$moto_log"
}
