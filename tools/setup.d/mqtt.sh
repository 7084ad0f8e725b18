#!/usr/bin/env bash
# mqtt: the MQTT tests need `mosquitto`, `mosquitto_passwd`, `mosquitto_sub`/`_pub` and `stdbuf` (private brokers on free
# ports), `openssl` (test certificates for the TLS test) and a broker on 127.0.0.1:1883.
# Idempotent: if something already listens there, nothing is started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$here/tools/env.sh"

missing=()
for pkg in mosquitto mosquitto-clients openssl coreutils; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

listening() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }
if listening; then
    echo "mqtt: a broker already listens on 127.0.0.1:1883" >&2
    exit 0
fi

# No systemd in CI containers, so start a daemonised Mosquitto bound to loopback only.
conf_dir="$SOTTO_CACHE/mosquitto"
mkdir -p "$conf_dir"
cat > "$conf_dir/mosquitto.conf" <<CONF
listener 1883 127.0.0.1
allow_anonymous true
persistence false
CONF
"$mosquitto_bin" -d -c "$conf_dir/mosquitto.conf"
for _ in $(seq 50); do
    listening && { echo "mqtt: started Mosquitto on 127.0.0.1:1883" >&2; exit 0; }
    sleep 0.1
done
echo "mqtt: Mosquitto did not come up on 127.0.0.1:1883" >&2
exit 1
